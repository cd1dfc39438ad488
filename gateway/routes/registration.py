"""Customers, registrations (报备), conflicts, the lead pool and authorizations."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["registration"])
