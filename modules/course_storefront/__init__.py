# The imports declare the storefront route and its methods
from . import api, routes  # noqa: F401
