"""The process around the core, as the commands run it: which database (`DATABASE_URL` or the embedded
server), the development credentials of `up`, the children `up` supervises, and the worker assembled
from the user's handler modules and the built-in processors. Above the core and below the CLI."""
