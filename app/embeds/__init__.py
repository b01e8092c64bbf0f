"""Social embeds that load nothing until the reader asks: the allow-list of providers
(providers.py), oEmbed look-ups through the SSRF-safe outgoing client at publish time
(resolver.py), and the snapshot stored with the entry's media that pages, events and
feeds render as a static card."""
