"""The API's routes, one module per resource: health, submitting, jobs (reads and changes), events, shows."""
