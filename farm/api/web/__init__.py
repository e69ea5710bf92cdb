"""The producer's dashboard: HTML pages and their scripts, served by the API app from this package (no
CDN: a render farm's network has no internet), signed in with an API token."""
