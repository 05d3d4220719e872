"""Billing interop: import accounts and payments from CSV exports, export outcomes back.

- ivr.billing.csvread: opening a file (delimiter, header), amounts and dates, rows with line numbers
- ivr.billing.encoding: UTF-8 or Windows-1251, decided from every line (mixed files are refused)
- ivr.billing.records: records that survive stray quotes and huge fields (reported by line)
- ivr.billing.columns: which column is which field (Russian and English defaults, --columns FILE)
- ivr.billing.parse: validation of one row, with the reason an admin reads
- ivr.billing.phones, ivr.billing.mojibake: the phone field of a row; garbled text in a row
- ivr.billing.importer: import_accounts / import_payments, ImportReport, RowError
- ivr.billing.store, ivr.billing.bulk: the bulk database writes of the account import
- ivr.billing.payments: apply_payment (payments reduce and close debt cases)
- ivr.billing.exporter: outcomes, block list and callbacks as rows, CSV and JSON writers
"""
