"""The storefront's methods: each module of this package declares its
methods with `method()`; importing the package registers them all."""
from .registry import METHODS, Call, available_methods, method  # noqa: F401
from . import (  # noqa: F401,E402  registration order is the document's
    auth, catalog, cart, coupon, checkout, order, enrollment, degree,
    discover)
