"""IAM's generation in this moto process: a number that moves after every change to IAM.

The verifier (credentials_api.MotoDirectory) keeps each principal it has built (policies, tags, key
status) and the decisions made from them for as long as the generation stays where it was when it
read them. Every method of moto's IAMBackend that can change anything (all but get_* and list_*,
reset included) is wrapped so that the generation moves when the method returns or raises, before
the API answer goes out. A reader takes the generation *before* it reads IAM, so an entry built
while a write was under way carries the older number and is dropped as soon as that write's bump
lands: once an IAM call has answered, no login is decided on what IAM held before it.

Changes that do not go through IAMBackend call bump() themselves (the STS session-tag shim).
"""
import functools
import inspect
import threading

_READ_ONLY = ("get_", "list_")
_lock = threading.Lock()
_generation = 0
_tracked = False


def generation():
    """The current generation (read it before reading IAM's state)."""
    return _generation


def bump():
    """IAM has changed: every cached principal is out of date from now on."""
    global _generation
    with _lock:
        _generation += 1


def _bumping(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        finally:
            bump()  # a write that failed half-way may still have changed something

    wrapper.moves_iam_generation = True
    return wrapper


def _writes(backend_class):
    """Names of the plain methods of backend_class (its bases' included) that may change state."""
    for name in dir(backend_class):
        if name.startswith(_READ_ONLY) or (name.startswith("_") and name != "reset"):
            continue
        if inspect.isfunction(inspect.getattr_static(backend_class, name)):
            yield name


def track_iam_writes():
    """Make every state-changing IAMBackend method move the generation; safe to call more than once."""
    global _tracked
    with _lock:
        if _tracked:
            return
        from moto.iam.models import IAMBackend

        for name in list(_writes(IAMBackend)):
            setattr(IAMBackend, name, _bumping(getattr(IAMBackend, name)))
        _tracked = True
