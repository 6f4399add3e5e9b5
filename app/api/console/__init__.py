"""The error console: server-rendered pages under /console where customers (master key) and
support staff (admin token) see their problems and errors and act on them.

Each module has one job: ``sessions`` (sign-in and the session table), ``security`` (response
headers, CSRF), ``forms`` (reading a posted form), ``templates`` (the Jinja2 environment and
its filters), ``charts`` (bar geometry of the SVG charts), ``payload_view`` (a payload, key or
header as safe HTML), ``problem_pages`` and ``error_page`` (what each page shows, through the
JSON API's own view functions), ``routes`` (the paths) and ``mount`` (wiring into the app).
"""
