from .permissions import is_manager


def roles(request) -> dict:
    """Whether the signed-in user is a manager, for navigation and page controls."""
    return {"is_manager": is_manager(getattr(request, "user", None))}
