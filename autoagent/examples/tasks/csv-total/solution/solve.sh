#!/bin/bash
python -c "
import csv
rows = csv.DictReader(open('/app/data/sales.csv'))
print(f\"{sum(float(r['amount']) for r in rows if r['region'] == 'north'):.2f}\")
" > /app/total.txt
