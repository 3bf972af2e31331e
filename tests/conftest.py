import os
import tempfile

# Subprocess CLIs started by the tests share one compilation cache, so each program compiles once per run.
os.environ.setdefault("PATHPROBE_CACHE", os.path.join(tempfile.gettempdir(), "pathprobe-test-cache"))

from graphgen.cli import enable_compilation_cache  # noqa: E402

enable_compilation_cache()
