"""service heartbeats: what each running process says about itself (for `ivr status`)

Revision ID: lead1
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = 'lead1'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('service_heartbeats',
    sa.Column('instance', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('host', sa.String(length=100), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('stopped_at', sa.DateTime(), nullable=True),
    sa.Column('info', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('instance', name=op.f('pk_service_heartbeats'))
    )
    op.create_index(op.f('ix_service_heartbeats_updated_at'), 'service_heartbeats', ['updated_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_service_heartbeats_updated_at'), table_name='service_heartbeats')
    op.drop_table('service_heartbeats')
