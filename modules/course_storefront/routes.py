"""The storefront route: POST /<database>/storefront, JSON-RPC 2.0 (see
jsonrpc.py and doc/api.rst)"""
from http import HTTPStatus

from werkzeug.wrappers import Response

from trytond.protocols.wrappers import with_pool
from trytond.wsgi import app

from .jsonrpc import handle

CONTENT_TYPE = 'application/json; charset=utf-8'


@app.route('/<database_name>/storefront', methods=['POST'])
@with_pool
def storefront(request, pool):
    try:
        pool.get('course.storefront.cart')
    except KeyError:
        # The module is not activated in this database
        return Response(status=HTTPStatus.NOT_FOUND)
    body = handle(request, pool)
    if body is None:
        return Response(status=HTTPStatus.NO_CONTENT)
    return Response(body, content_type=CONTENT_TYPE)
