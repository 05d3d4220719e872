"""call_attempts: who placed a click-to-call and the reason of an override of the call hours

Revision ID: c2c1
Revises: console1
"""
import sqlalchemy as sa
from alembic import op

revision = 'c2c1'
down_revision = 'live1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('call_attempts') as batch:
        batch.add_column(sa.Column('operator_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('override_reason', sa.String(length=300), nullable=True))
        batch.create_foreign_key(batch.f('fk_call_attempts_operator_id_users'), 'users', ['operator_id'], ['id'],
                                 ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('call_attempts') as batch:
        batch.drop_constraint(batch.f('fk_call_attempts_operator_id_users'), type_='foreignkey')
        batch.drop_column('override_reason')
        batch.drop_column('operator_id')
