# The import declares the routes on trytond's WSGI application
from . import routes  # noqa: F401
