"""What the first sealed document of a process builds, built before an applicant waits for it.

A worker's first 秒批 built the current CRLs and trust settings, each seal's signer (its
certificate and chain parsed) and PDF image, and ran pyHanko's first signature (its lazily
loaded code and ASN.1 specifications): about twice a steady document's time on top of that
applicant's approval (68–75 ms against 21–31 ms here; four times that on a slow machine).
`warm_signing` does all of that with
the database read only, then signs a one-page PDF in memory as the first active seal would,
with a placeholder in place of the signature value: a seal's key signs only documents recorded
as the seal's use. The PDF is thrown away, nothing is written, no timestamp authority is asked.
"""

from __future__ import annotations

import datetime as dt

from fpdf import FPDF
from pyhanko.sign.fields import MDPPerm
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.seals.context import SealContext
from app.seals.models import Seal, SealStatus
from app.seals.signatures import seal_image, seal_signer
from app.seals.trust import trust_settings
from seals.documents import Box
from seals.signing import Appearance, sign_pdf

WARM_UP_FIELD = "WarmUp"


def _blank_page() -> bytes:
    pdf = FPDF(unit="pt", format="A4")
    pdf.add_page()
    return bytes(pdf.output())


def warm_signing(session: Session, ctx: SealContext, now: dt.datetime) -> int:
    """Fill the context's signing caches for every active seal and sign once; returns how
    many seals were warmed (0: no seal yet, only the trust settings were built)."""
    trust = trust_settings(session, ctx, now)
    seals = session.scalars(select(Seal).where(Seal.status == SealStatus.ACTIVE)).all()
    built = [(seal_signer(ctx, seal), seal_image(ctx, seal)) for seal in seals]
    if built:
        signer, image = built[0]
        sign_pdf(
            _blank_page(),
            signer.placeholder(),
            field_name=WARM_UP_FIELD,
            appearance=Appearance(Box(400, 80, 520, 200), image),
            trust=trust,
            certify=True,
            permissions=MDPPerm.NO_CHANGES,
            timestamper=None,
        )
    return len(seals)
