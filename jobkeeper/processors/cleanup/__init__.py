"""`cleanup-old-data`: the leader's retention, on demand.

`payload` declares what a job carries (light: the API and the clients import it to validate);
`processor` runs it (imports the provider's libraries). Nothing is imported here, so that loading
the payload never loads the processor."""
