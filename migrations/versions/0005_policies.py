"""Policy push: enterprise profiles, policies with versioned criteria, matches, feed, push outbox.

Revision ID: 0005_policies
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_policies"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enterprise_profile_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "enterprise_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["registry_enterprises.id"],
            name=op.f("fk_enterprise_profile_changes_enterprise_id_registry_enterprises"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_enterprise_profile_changes_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enterprise_profile_changes")),
    )
    with op.batch_alter_table("enterprise_profile_changes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_enterprise_profile_changes_enterprise", ["enterprise_id", "id"], unique=False
        )

    op.create_table(
        "enterprise_profiles",
        sa.Column(
            "enterprise_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("industry_code", sa.String(length=5), nullable=True),
        sa.Column("town", sa.String(length=16), nullable=True),
        sa.Column("established_on", sa.Date(), nullable=True),
        sa.Column("employees", sa.Integer(), nullable=True),
        sa.Column("revenue_yuan", sa.BigInteger(), nullable=True),
        sa.Column("size_class", sa.String(length=8), nullable=True),
        sa.Column("tag_bits", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["registry_enterprises.id"],
            name=op.f("fk_enterprise_profiles_enterprise_id_registry_enterprises"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("enterprise_id", name=op.f("pk_enterprise_profiles")),
    )
    with op.batch_alter_table("enterprise_profiles", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_enterprise_profiles_industry_code"), ["industry_code"], unique=False
        )

    op.create_table(
        "policies",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "department_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("title", sa.String(length=128), nullable=False),
        sa.Column("doc_number", sa.String(length=64), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("source_url", sa.String(length=512), nullable=True),
        sa.Column(
            "benefit_kind",
            sa.Enum(
                "subsidy",
                "tax",
                "loan",
                "insurance",
                "award",
                "service",
                name="benefitkind",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("benefit_amount_yuan", sa.BigInteger(), nullable=True),
        sa.Column(
            "delivery",
            sa.Enum("automatic", "application", name="delivery", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("item_code", sa.String(length=64), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "published",
                "expired",
                "withdrawn",
                name="policystatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("criteria_version", sa.Integer(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdraw_reason", sa.String(length=255), nullable=True),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column(
            "created_by_staff_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_staff_id"],
            ["staff_accounts.id"],
            name=op.f("fk_policies_created_by_staff_id_staff_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
            name=op.f("fk_policies_department_id_departments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policies")),
    )
    with op.batch_alter_table("policies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_policies_department_id"), ["department_id"], unique=False
        )
        batch_op.create_index(
            "ix_policies_status_published_at", ["status", "published_at"], unique=False
        )

    op.create_table(
        "policy_push_optouts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "enterprise_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["registry_enterprises.id"],
            name=op.f("fk_policy_push_optouts_enterprise_id_registry_enterprises"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_policy_push_optouts_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_push_optouts")),
        sa.UniqueConstraint(
            "user_id", "enterprise_id", name=op.f("uq_policy_push_optouts_user_id_enterprise_id")
        ),
    )
    op.create_table(
        "policy_receiving_accounts",
        sa.Column(
            "enterprise_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("bank_name", sa.String(length=64), nullable=False),
        sa.Column("account_name", sa.String(length=128), nullable=False),
        sa.Column("account_number_sealed", sa.Text(), nullable=False),
        sa.Column("account_number_masked", sa.String(length=40), nullable=False),
        sa.Column(
            "confirmed_by_user_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["confirmed_by_user_id"],
            ["users.id"],
            name=op.f("fk_policy_receiving_accounts_confirmed_by_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["registry_enterprises.id"],
            name=op.f("fk_policy_receiving_accounts_enterprise_id_registry_enterprises"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("enterprise_id", name=op.f("pk_policy_receiving_accounts")),
    )
    op.create_table(
        "policy_criteria",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "policy_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("criteria", sa.JSON(), nullable=False),
        sa.Column(
            "created_by_staff_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_staff_id"],
            ["staff_accounts.id"],
            name=op.f("fk_policy_criteria_created_by_staff_id_staff_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["policies.id"],
            name=op.f("fk_policy_criteria_policy_id_policies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_criteria")),
        sa.UniqueConstraint(
            "policy_id", "version", name=op.f("uq_policy_criteria_policy_id_version")
        ),
    )
    op.create_table(
        "policy_feed_marks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "enterprise_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "policy_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("favourite", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["registry_enterprises.id"],
            name=op.f("fk_policy_feed_marks_enterprise_id_registry_enterprises"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["policies.id"],
            name=op.f("fk_policy_feed_marks_policy_id_policies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_policy_feed_marks_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_feed_marks")),
        sa.UniqueConstraint(
            "user_id",
            "enterprise_id",
            "policy_id",
            name=op.f("uq_policy_feed_marks_user_id_enterprise_id_policy_id"),
        ),
    )
    with op.batch_alter_table("policy_feed_marks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_policy_feed_marks_policy_id"), ["policy_id"], unique=False
        )

    op.create_table(
        "policy_matches",
        sa.Column(
            "policy_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "enterprise_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("criteria_version", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("eligible", "maybe", name="matchstatus", native_enum=False),
            nullable=False,
        ),
        sa.Column("results", sa.String(length=64), nullable=False),
        sa.Column("matched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("policy_id", "enterprise_id", name=op.f("pk_policy_matches")),
    )
    with op.batch_alter_table("policy_matches", schema=None) as batch_op:
        batch_op.create_index(
            "ix_policy_matches_enterprise", ["enterprise_id", "policy_id"], unique=False
        )

    op.create_table(
        "policy_pushes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "policy_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "enterprise_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "waiting",
                "claimed",
                "in_flight",
                "sent",
                "skipped",
                "failed",
                "in_doubt",
                "cancelled",
                name="pushstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claim_token", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "notification_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("in_flight_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["registry_enterprises.id"],
            name=op.f("fk_policy_pushes_enterprise_id_registry_enterprises"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notification_outbox.id"],
            name=op.f("fk_policy_pushes_notification_id_notification_outbox"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["policies.id"],
            name=op.f("fk_policy_pushes_policy_id_policies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_policy_pushes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_pushes")),
        sa.UniqueConstraint(
            "policy_id", "user_id", name=op.f("uq_policy_pushes_policy_id_user_id")
        ),
    )
    with op.batch_alter_table("policy_pushes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_policy_pushes_enterprise_released", ["enterprise_id", "released_at"], unique=False
        )
        batch_op.create_index("ix_policy_pushes_status_due", ["status", "due_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("policy_pushes", schema=None) as batch_op:
        batch_op.drop_index("ix_policy_pushes_status_due")
        batch_op.drop_index("ix_policy_pushes_enterprise_released")

    op.drop_table("policy_pushes")
    with op.batch_alter_table("policy_matches", schema=None) as batch_op:
        batch_op.drop_index("ix_policy_matches_enterprise")

    op.drop_table("policy_matches")
    with op.batch_alter_table("policy_feed_marks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_policy_feed_marks_policy_id"))

    op.drop_table("policy_feed_marks")
    op.drop_table("policy_criteria")
    op.drop_table("policy_receiving_accounts")
    op.drop_table("policy_push_optouts")
    with op.batch_alter_table("policies", schema=None) as batch_op:
        batch_op.drop_index("ix_policies_status_published_at")
        batch_op.drop_index(batch_op.f("ix_policies_department_id"))

    op.drop_table("policies")
    with op.batch_alter_table("enterprise_profiles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enterprise_profiles_industry_code"))

    op.drop_table("enterprise_profiles")
    with op.batch_alter_table("enterprise_profile_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_enterprise_profile_changes_enterprise")

    op.drop_table("enterprise_profile_changes")
