"""outbox_events: facts pushed to the billing system's HTTP endpoint (ivr/outbox/)

Revision ID: outbox1
Revises: websec1 (the head when this branch started; the lead re-chains at merge)
"""
import sqlalchemy as sa
from alembic import op

revision = 'outbox1'
down_revision = 'faults1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outbox_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=120), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('account_external_id', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_try_at', sa.DateTime(), nullable=False),
    sa.Column('last_error', sa.String(length=500), nullable=False),
    sa.Column('claimed_by', sa.String(length=64), nullable=True),
    sa.Column('claimed_until', sa.DateTime(), nullable=True),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_outbox_events_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_events')),
    sa.UniqueConstraint('account_id', 'seq', name=op.f('uq_outbox_events_account_id')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_outbox_events_idempotency_key'))
    )
    op.create_index('ix_outbox_events_state_next', 'outbox_events', ['state', 'next_try_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_outbox_events_state_next', table_name='outbox_events')
    op.drop_table('outbox_events')
