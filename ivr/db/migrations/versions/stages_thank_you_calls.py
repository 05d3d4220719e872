"""issue 16: accounts.keep_price_until and thank_you_calls (a reaction to every payment)

Revision ID: stages1
Revises: c2c1
"""
import sqlalchemy as sa
from alembic import op

revision = 'stages1'
down_revision = 'guard1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accounts') as batch:
        batch.add_column(sa.Column('keep_price_until', sa.Date(), nullable=True))
    op.create_table('thank_you_calls',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('debt_case_id', sa.Integer(), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=True),
    sa.Column('paid_on', sa.Date(), nullable=False),
    sa.Column('trigger', sa.String(length=10), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('due_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_attempt_id', sa.Integer(), nullable=True),
    sa.Column('result', sa.String(length=20), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('done_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_thank_you_calls_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['debt_case_id'], ['debt_cases.id'], name=op.f('fk_thank_you_calls_debt_case_id_debt_cases'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_thank_you_calls_payment_id_payments'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['last_attempt_id'], ['call_attempts.id'], name=op.f('fk_thank_you_calls_last_attempt_id_call_attempts'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_thank_you_calls')),
    sa.UniqueConstraint('debt_case_id', name=op.f('uq_thank_you_calls_debt_case_id'))
    )
    op.create_index(op.f('ix_thank_you_calls_account_id'), 'thank_you_calls', ['account_id'], unique=False)
    op.create_index('ix_thank_you_calls_state_due', 'thank_you_calls', ['state', 'due_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_thank_you_calls_state_due', table_name='thank_you_calls')
    op.drop_index(op.f('ix_thank_you_calls_account_id'), table_name='thank_you_calls')
    op.drop_table('thank_you_calls')
    with op.batch_alter_table('accounts') as batch:
        batch.drop_column('keep_price_until')
