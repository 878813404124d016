"""What the socket says when access changes: the user signed out or lost access here
(close), or staff changed who may use a watched conversation's model (an ``access``
frame)."""

from __future__ import annotations

from typing import Any

from webapp.accounts import revocation
from webapp.catalog.policy import access_refusal
from webapp.core.errors import ApplicationError

from .. import selectors
from .base import ChatSocket, database_work

REVOKED = {
    revocation.CLOSE_SIGNED_OUT: "You are signed out.",
    revocation.CLOSE_ACCESS_CHANGED: "Your access changed; reconnecting.",
}


class Access(ChatSocket):
    async def access_revoked(self, message: dict[str, Any]) -> None:
        """The user signed out here, or their access changed: honour nothing more."""
        if message["session"] in (None, self.session_key):
            self.revoked = True
            await self.close(code=message["code"])

    async def _still_allowed(self) -> bool:
        """Whether the access this socket was opened with still holds (checked per change)."""
        epoch, ended = await revocation.access_state(self.user.pk, self.session_key)
        if ended or epoch != self.epoch:
            self.revoked = True
            code = revocation.CLOSE_SIGNED_OUT if ended else revocation.CLOSE_ACCESS_CHANGED
            await self._send(
                {
                    "type": "error",
                    "code": "signed_out" if ended else "access_changed",
                    "detail": REVOKED[code],
                }
            )
            await self.close(code=code)
            return False
        return True

    async def _tell_access(self, conversation: Any, *, allowed_too: bool = False) -> None:
        """Say so if the user may no longer send to the conversation's model (and why); with
        ``allowed_too``, also say so when they may (again)."""
        refusal = await database_work(access_refusal)(
            user=self.user, model_or_gate=conversation.model, action="chat"
        )
        frame = {"type": "access", "conversation": str(conversation.pk)}
        if refusal is not None:
            await self._send({**frame, "detail": refusal})
        elif allowed_too:
            await self._send({**frame, "detail": None, "allowed": True})

    async def access_model_changed(self, message: dict[str, Any]) -> None:
        """Staff changed who may use a model (its policy, gate, or it left service): every
        conversation with it that this socket watches hears what that means now."""
        for conversation_id in sorted(self.by_model.get(message["model"], ())):
            try:
                conversation = await database_work(selectors.conversation_get)(
                    user=self.user, conversation_id=conversation_id
                )
            except ApplicationError:
                continue  # deleted meanwhile
            if str(conversation.model_id) == message["model"]:
                await self._tell_access(conversation, allowed_too=True)
