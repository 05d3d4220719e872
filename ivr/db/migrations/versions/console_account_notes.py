"""account_notes: operators' and admins' notes on an account (and the record of robot holds)

Revision ID: console1
Revises: websec1
"""
import sqlalchemy as sa
from alembic import op

revision = 'console1'
down_revision = 'outbox1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('account_notes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('author', sa.String(length=64), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_account_notes_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_notes'))
    )
    op.create_index(op.f('ix_account_notes_account_id'), 'account_notes', ['account_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_account_notes_account_id'), table_name='account_notes')
    op.drop_table('account_notes')
