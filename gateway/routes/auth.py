"""Login, token refresh and logout."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import Field
from qudao.identity.v1 import identity_pb2

from gateway.clients import call
from gateway.protojson import to_json
from gateway.ratelimit import client_address
from gateway.routes.common import Body, Caller, Services
from shared.context import CLIENT_ADDRESS_KEY

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class LoginBody(Body):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class RefreshBody(Body):
    refresh_token: str = Field(min_length=1, max_length=200)


class ChangePasswordBody(Body):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


@router.post("/login", responses={429: {"description": "too many sign-in attempts from "
                                    "this address or for this account; see Retry-After"}})
async def login(body: LoginBody, request: Request, services: Services) -> dict:
    """Sign in. Every refusal of a username and password is the same 401, whatever the
    reason; attempts are limited per source address and per account (429)."""
    response = await call(services.identity.Login,
                          identity_pb2.LoginRequest(username=body.username, password=body.password),
                          metadata=((CLIENT_ADDRESS_KEY, client_address(request.scope)),))
    return {**to_json(response), "token_type": "Bearer"}


@router.post("/refresh")
async def refresh(body: RefreshBody, services: Services) -> dict:
    response = await call(services.identity.RefreshToken,
                          identity_pb2.RefreshTokenRequest(refresh_token=body.refresh_token))
    return {**to_json(response), "token_type": "Bearer"}


@router.post("/logout", status_code=204)
async def logout(body: RefreshBody, services: Services) -> None:
    await call(services.identity.Logout,
               identity_pb2.LogoutRequest(refresh_token=body.refresh_token))


@router.get("/me")
async def me(caller: Caller, services: Services) -> dict:
    return to_json(await call(services.identity.WhoAmI, identity_pb2.WhoAmIRequest()))


@router.post("/password", status_code=204)
async def change_password(body: ChangePasswordBody, caller: Caller, services: Services) -> None:
    """Change your own password; your refresh tokens are revoked (sign in again)."""
    await call(services.identity.ChangePassword, identity_pb2.ChangePasswordRequest(
        current_password=body.current_password, new_password=body.new_password))
