"""line leases: a shared, atomic count of lines in use per Asterisk server (issue 15)

Revision ID: faults1
Revises: websec1
"""
import sqlalchemy as sa
from alembic import op

revision = 'faults1'
down_revision = 'websec1'  # chained after main's head at the merge of main
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('line_leases',
    sa.Column('server', sa.String(length=64), nullable=False),
    sa.Column('slot', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('action_id', sa.String(length=64), nullable=True),
    sa.Column('dialer_id', sa.String(length=64), nullable=True),
    sa.Column('expires_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('server', 'slot', name=op.f('pk_line_leases'))
    )
    with op.batch_alter_table('line_leases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_line_leases_action_id'), ['action_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('line_leases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_line_leases_action_id'))
    op.drop_table('line_leases')
