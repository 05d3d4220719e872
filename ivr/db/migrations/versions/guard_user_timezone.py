"""users.timezone: the zone the web pages show times in for this user (empty = the company's)

Revision ID: guard1
Revises: c2c1
"""
import sqlalchemy as sa
from alembic import op

revision = 'guard1'
down_revision = 'wizard1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('timezone', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.drop_column('timezone')
