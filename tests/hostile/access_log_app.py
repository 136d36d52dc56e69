"""The smallest WSGI application, for gunicorn to serve in tests/hostile/test_access_log.py:
gunicorn's access log depends on the request, not on what answers it."""


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
