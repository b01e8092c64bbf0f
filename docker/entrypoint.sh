#!/bin/sh
# The image's entrypoint. When BULLETIN_MIGRATE_ON_START is true (the image's default) it
# brings the database up to date first: `bulletin migrate` holds the migration lock, so
# replicas starting together on one database take turns, and the first one does the work.
# Then it becomes the command it was given, by default `bulletin serve` (see the
# Dockerfile's CMD), or any other: `docker run IMAGE bulletin token create ...`.
set -eu

# The values pydantic reads as booleans, as Bulletin's settings do.
case "$(printf '%s' "${BULLETIN_MIGRATE_ON_START:-}" | tr '[:upper:]' '[:lower:]')" in
    1 | true | t | yes | y | on)
        # Its report goes to standard error: standard output is the command's own (a
        # token's secret, for one).
        bulletin migrate >&2
        # Done once here; `bulletin serve` would otherwise migrate again.
        export BULLETIN_MIGRATE_ON_START=0
        ;;
    "" | 0 | false | f | no | n | off) ;;
    *)
        echo "bulletin: BULLETIN_MIGRATE_ON_START must be true or false (1 or 0), not '${BULLETIN_MIGRATE_ON_START}'" >&2
        exit 2
        ;;
esac

exec "$@"
