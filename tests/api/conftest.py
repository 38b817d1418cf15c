"""API fixtures: the app on a fresh migrated database, an HTTP client, two tenants and their tokens (all
shared with the dashboard, e2e and security tests, in tests/fixtures.py)."""

from tests.fixtures import app as app
from tests.fixtures import http as http
from tests.fixtures import make_app as make_app
from tests.fixtures import owner as owner
from tests.fixtures import settings as settings
from tests.fixtures import tenants as tenants
from tests.fixtures import tokens as tokens
