"""HTTP routes for webhook registration and delivery logs (filled in by the webhooks issue)."""

from fastapi import APIRouter

router = APIRouter()
