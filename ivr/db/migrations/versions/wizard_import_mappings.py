"""import_mappings: the column mapping confirmed in the web import wizard, per kind of file

Revision ID: wizard1
Revises: c2c1
"""
import sqlalchemy as sa
from alembic import op

revision = 'wizard1'
down_revision = 'c2c1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('import_mappings',
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('columns', sa.JSON(), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('kind', name=op.f('pk_import_mappings'))
    )


def downgrade() -> None:
    op.drop_table('import_mappings')
