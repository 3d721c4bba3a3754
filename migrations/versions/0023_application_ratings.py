"""好差评 for applications: a rating names a ticket or an application (exactly one), with the
deciding department; a bad one's follow-up belongs to a hall or to that department.

Revision ID: 0023_application_ratings
Revises: 0022_tolerance_deadlines
Create Date: 2026-12-03 23:54:17.043624
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023_application_ratings"
down_revision = "0022_tolerance_deadlines"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rating_follow_ups", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "department_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
            )
        )
        batch_op.alter_column(
            "hall_id",
            existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        )
        batch_op.create_index(
            "ix_rating_follow_ups_department_id_status", ["department_id", "status"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_rating_follow_ups_department_id_departments"),
            "departments",
            ["department_id"],
            ["id"],
        )

    with op.batch_alter_table("ratings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "application_id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column(
                "department_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
            )
        )
        batch_op.alter_column(
            "ticket_id",
            existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        )
        batch_op.alter_column(
            "hall_id",
            existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        )
        batch_op.alter_column(
            "category_id",
            existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        )
        batch_op.create_index(
            "ix_ratings_department_id_rated_at", ["department_id", "rated_at"], unique=False
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_ratings_application_id"), ["application_id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_ratings_department_id_departments"),
            "departments",
            ["department_id"],
            ["id"],
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_ratings_application_id_applications"),
            "applications",
            ["application_id"],
            ["id"],
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_ratings_one_subject"), "(ticket_id IS NULL) <> (application_id IS NULL)"
        )


def downgrade() -> None:
    # Ratings of applications have no ticket: they go before the columns become required again.
    op.execute(
        "DELETE FROM rating_follow_ups WHERE rating_id IN"
        " (SELECT id FROM ratings WHERE ticket_id IS NULL)"
    )
    op.execute("DELETE FROM ratings WHERE ticket_id IS NULL")
    with op.batch_alter_table("ratings", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_ratings_one_subject"), type_="check")
        batch_op.drop_constraint(
            batch_op.f("fk_ratings_application_id_applications"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("fk_ratings_department_id_departments"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("uq_ratings_application_id"), type_="unique")
        batch_op.drop_index("ix_ratings_department_id_rated_at")
        batch_op.alter_column(
            "category_id",
            existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        )
        batch_op.alter_column(
            "hall_id",
            existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        )
        batch_op.alter_column(
            "ticket_id",
            existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        )
        batch_op.drop_column("department_id")
        batch_op.drop_column("application_id")

    with op.batch_alter_table("rating_follow_ups", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_rating_follow_ups_department_id_departments"), type_="foreignkey"
        )
        batch_op.drop_index("ix_rating_follow_ups_department_id_status")
        batch_op.alter_column(
            "hall_id",
            existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        )
        batch_op.drop_column("department_id")
