"""robot_pauses: admins' pauses of the robot (global, per ladder stage, per Asterisk server)

Revision ID: live1
Revises: console1
"""
import sqlalchemy as sa
from alembic import op

revision = 'live1'
down_revision = 'console1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('robot_pauses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=10), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('who', sa.String(length=64), nullable=False),
    sa.Column('why', sa.String(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('resumed_at', sa.DateTime(), nullable=True),
    sa.Column('resumed_by', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_robot_pauses'))
    )
    op.create_index('ix_robot_pauses_active', 'robot_pauses', ['resumed_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_robot_pauses_active', table_name='robot_pauses')
    op.drop_table('robot_pauses')
