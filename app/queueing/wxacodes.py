"""Mini-program codes (wxacode) of printed hall codes: drawn by WeChat once, then kept.

A printed code's token fits a mini-program code's `scene`, so WeChat's getwxacodeunlimit draws a
code that opens the queue's scan page in the mini-program, which hands the scene to
`POST /queue/scan` as the hall code. WeChat limits that API per app (calls a minute, shared by
every worker) and the token of a printed code never changes, so the PNG is stored in the
database the first time it is asked for: reprints cost no WeChat call, every worker and host
serves the same image, and a change of page or width (part of the key) or of the token (stored
and compared) draws a new one. Revoked codes are refused before this is reached.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.queueing import codes
from app.queueing.errors import WxacodeRefused, WxacodeUnavailable
from app.queueing.models import HallCode, HallCodeWxacode
from app.queueing.settings import QueueSettings
from wechat import errors as wx
from wechat.client import MiniProgramApi

log = logging.getLogger(__name__)

# The largest WeChat draws: these codes are printed on posters and counters.
WIDTH = 1280


def printed_wxacode(
    session: Session,
    wechat: MiniProgramApi,
    settings: QueueSettings,
    code: HallCode,
    *,
    page: str,
) -> bytes:
    """The PNG mini-program code of a live printed code, opening `page` with its token."""
    token = codes.printed_token(settings, code)
    stored = session.get(HallCodeWxacode, (code.id, page, WIDTH))
    if stored is not None and stored.token == token:
        return stored.png
    try:
        # check_path: WeChat refuses a page missing from the released mini-program, so a
        # poster is never printed that opens nothing.
        png = wechat.get_unlimited_code(
            token, page=page, width=WIDTH, check_path=True, env_version="release"
        )
    except wx.InvalidArgument as exc:
        log.warning("wechat refused a wxacode", extra={"errcode": exc.errcode, "page": page})
        raise WxacodeRefused(errcode=exc.errcode) from exc
    except wx.WeChatError as exc:
        log.warning("wechat wxacode failed", extra={"wechat_error": type(exc).__name__})
        raise WxacodeUnavailable(errcode=exc.errcode) from exc
    if stored is not None:
        stored.token, stored.png = token, png
        session.flush()
        return png
    try:
        with session.begin_nested():
            session.add(
                HallCodeWxacode(hall_code_id=code.id, page=page, width=WIDTH, token=token, png=png)
            )
    except IntegrityError:
        # Another request stored it meanwhile; WeChat drew the same code for the same scene.
        pass
    return png
