"""Login, token refresh and logout."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field
from qudao.identity.v1 import identity_pb2

from gateway.clients import call
from gateway.protojson import to_json
from gateway.routes.common import Body, Caller, Services

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class LoginBody(Body):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class RefreshBody(Body):
    refresh_token: str = Field(min_length=1, max_length=200)


class ChangePasswordBody(Body):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


@router.post("/login")
async def login(body: LoginBody, services: Services) -> dict:
    response = await call(services.identity.Login,
                          identity_pb2.LoginRequest(username=body.username, password=body.password))
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
