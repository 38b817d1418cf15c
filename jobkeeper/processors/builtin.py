"""Import this module to run the built-in processors under `jobkeeper worker`:

    jobkeeper worker --import myapp.tasks --import jobkeeper.processors.builtin
    (or JOBKEEPER_IMPORTS=myapp.tasks,jobkeeper.processors.builtin)

It registers every built-in whose job type has no handler yet in the default registry (the one `@task`
fills). Modules are imported in the order given, so name yours first: your handlers then replace the
built-ins of the same name. Settings are read from the environment when each processor's first job runs.
"""

from jobkeeper.processors import register_builtins
from jobkeeper.worker.registry import default_registry

register_builtins(default_registry)
