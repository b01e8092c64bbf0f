"""The URL paths that more than one layer must recognise, defined once.

The stream router mounts these routes; the rate limits, the uvicorn edge and the
HTTP cache recognise them from a raw path before routing.
"""

import re

API_PREFIX = "/api/v1"
# A blog's streams: the router's prefix and the two transports under it.
STREAMS_PREFIX = API_PREFIX + "/blogs/{slug}"
WEBSOCKET_ROUTE = "/ws"
SSE_ROUTE = "/sse"
# Streams of several blogs on one connection (app/realtime/multiplex.py).
MULTI_STREAMS_PREFIX = API_PREFIX + "/streams"
MULTI_WEBSOCKET_STREAM = MULTI_STREAMS_PREFIX + WEBSOCKET_ROUTE

# Either stream of any blog (the slug is checked by the route), or of several blogs.
STREAM = re.compile(r"^/api/v1/(?:blogs/[^/]+|streams)/(?:ws|sse)$")
# The WebSocket stream, with the (still percent-encoded) slug as group 1.
WEBSOCKET_STREAM = re.compile(r"^/api/v1/blogs/([^/]+)/ws$")
# The public reads of one blog, the API's and the pages', with its slug as group 1.
BLOG_READ = re.compile(r"^/(?:api/v1/)?blogs/([a-z0-9]+(?:-[a-z0-9]+)*)(?:/|$)")
# A blog's photo uploads: streamed, with a body limit of their own (app/media/uploads.py).
MEDIA_UPLOAD = re.compile(r"^/api/v1/blogs/[^/]+/media$")
