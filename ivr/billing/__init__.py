"""Billing interop: import accounts and payments from CSV exports, export outcomes back.

- ivr.billing.csvread: encoding / delimiter detection, amounts and dates, rows with line numbers
- ivr.billing.columns: which column is which field (Russian and English defaults, --columns FILE)
- ivr.billing.parse: validation of one row, with the reason an admin reads
- ivr.billing.importer: import_accounts / import_payments, ImportReport, RowError
- ivr.billing.store, ivr.billing.bulk: the bulk database writes of the account import
- ivr.billing.payments: apply_payment (payments reduce and close debt cases)
- ivr.billing.exporter: outcomes, block list and callbacks as rows, CSV and JSON writers
"""
