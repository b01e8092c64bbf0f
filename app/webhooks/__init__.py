"""Webhook deliveries: each blog's change log, POSTed event by event to its webhooks.

A webhook is one more reader of the log. Its cursor (`delivered_seq`) lives in
the database; the worker sends the event after the cursor, as its stored
payload bytes, signed (Standard Webhooks), and moves the cursor only when the
receiver answered 2xx. Events go one at a time per webhook, in seq order: a
failing event is retried with exponential back-off and jitter and holds back the
ones after it, and a long run of failures disables the webhook. The webhook's row is
read again as each attempt is recorded, so a new URL or secret, or a pause, applies
from the next event. A webhook with a backlog is served for a bounded turn and then
queues again behind the others, so a few slow receivers cannot hold every slot.

Every process runs a worker. A process delivers to a webhook only while it holds
that webhook's lease, claimed in one transaction (`FOR UPDATE SKIP LOCKED` on
PostgreSQL; SQLite has one writer) and renewed with every recorded attempt, so
one process at a time sends a webhook's events and none goes twice in normal
operation. A stopping worker lets attempts in flight finish and gives its leases
back; one that dies loses them when they expire. Nothing is kept in memory that
a restart would lose. The publisher wakes this process's worker after each
commit; a poll finds events that other processes published.
"""
