"""revocable sessions (users.session_epoch) and API token scopes (api_tokens.scopes)

Existing tokens get both scopes, import and export: that is what they could do before, so a
billing system's integration keeps working; an admin narrows them by re-issuing.

Revision ID: websec1
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = 'websec1'
down_revision = 'lead1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('session_epoch', sa.Integer(), server_default='0', nullable=False))
    with op.batch_alter_table('api_tokens') as batch:
        batch.add_column(sa.Column('scopes', sa.String(length=64), server_default='import,export', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('api_tokens') as batch:
        batch.drop_column('scopes')
    with op.batch_alter_table('users') as batch:
        batch.drop_column('session_epoch')
