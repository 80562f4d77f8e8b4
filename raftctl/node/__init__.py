"""One exchange node as an OS process: write-ahead log, TCP transport, HTTP API."""
