"The Redis connection of `[course] redis`, one pool per process"
import threading

from trytond.config import config

_lock = threading.Lock()
_clients = {}

TIMEOUT = 2  # seconds: a Redis that does not answer is unavailable


def redis_url():
    return config.get('course', 'redis', default=None) or None


def client():
    "The Redis client of the configuration, or None when there is none"
    url = redis_url()
    if not url:
        return None
    with _lock:
        if url not in _clients:
            import redis
            _clients[url] = redis.Redis.from_url(
                url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT,
                decode_responses=True)
        return _clients[url]


def key(database, *parts):
    "A key of ours in the database's namespace"
    return ':'.join(['course', database] + [str(p) for p in parts])
