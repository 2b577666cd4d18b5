"""Alert summaries measured by what an analyst reads: the language model summarises alerts (the
prompt and checks of the ``alert_summary`` job) and each summary is judged the way the job judges
it. Prints JSON: the share kept (every sentence supported by the items it cites), the share the
structural check alone would have kept (the rule before: real ids, 2-4 sentences), the share with
an unsupported sentence, the problems by kind (number, name, direction, entity, no citation), and
the checker on the items' own words; ``--sample-out`` writes alerts with their items, the summary,
each sentence's verdict and what the analyst reads, as markdown.

Alerts come from ``--csv`` (any CSV of items with a text and a label column: per entity, from an
``--entity-col`` or found like ingestion does, by cashtag and watch list, the items most negative
first in alerts of GENAI_ALERT_EVIDENCE_ITEMS) or ``--from-db`` (the fired alerts stored)."""

import json
import re
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--csv", type=Path, help="Items: a text and a label column; alerts are made per entity.")
        source.add_argument("--from-db", action="store_true", help="The fired alerts in the database, newest first.")
        parser.add_argument("--text-col", default="text")
        parser.add_argument("--label-col", default="label")
        parser.add_argument("--label-map", default="0=negative,1=positive,2=neutral",
                            help="VALUE=LABEL pairs; labels already named negative/neutral/positive pass as they are.")
        parser.add_argument("--entity-col", default="", help="Entity keys of each row (comma-separated); a row without "
                                                             "any: the cashtags and watch-list names in its text.")
        parser.add_argument("--limit", type=int, default=30, help="Alerts summarised (entities take turns).")
        parser.add_argument("--min-items", type=int, default=3, help="Fewer items for an entity: no alert.")
        parser.add_argument("--concurrency", type=int, default=4, help="Summaries generated at once (the engine batches them).")
        parser.add_argument("--sample-out", type=Path, help="Markdown file of alerts with their items and summaries.")
        parser.add_argument("--sample-size", type=int, default=10)

    def handle(self, *args, csv, from_db, text_col, label_col, label_map, entity_col, limit, min_items, concurrency,
               sample_out, sample_size, **options):
        from monitoring.selectors import entity_terms
        from workers.evaluation.alert_summaries import sample_markdown, summaries_evaluate, summary_figures
        from workers.runtime.models import lm_get

        if limit < 1:
            raise CommandError("--limit: at least 1.")
        alerts = self._alerts_from_db(limit) if from_db else self._alerts_from_csv(
            csv, text_col=text_col, label_col=label_col, label_map=label_map, entity_col=entity_col, min_items=min_items
        )[:limit]
        if not alerts:
            raise CommandError("No alerts to summarise: " + ("no alert has fired." if from_db else
                                                            f"no entity has {min_items} items (--entity-col, watch list)."))
        lm = lm_get()
        self.stderr.write(f"Summarising {len(alerts)} alerts with {lm.version} ...")
        outcomes = summaries_evaluate(alerts, lm=lm, entity_terms=lambda key: entity_terms(key=key), concurrency=concurrency,
                                      progress=self.stderr.write)
        figures = {"model": lm.version, "source": "database" if from_db else str(csv), **summary_figures(outcomes)}
        self.stdout.write(json.dumps(figures, indent=2))
        if sample_out:
            title = f"Alert summaries of {lm.version} on {figures['source']}: {min(sample_size, len(outcomes))} of {len(outcomes)}"
            sample_out.write_text(sample_markdown(outcomes[:sample_size], figures=figures, title=title), encoding="utf-8")
            self.stderr.write(f"Sample: {sample_out}")

    def _alerts_from_csv(self, path: Path, *, text_col: str, label_col: str, label_map: str, entity_col: str,
                         min_items: int) -> list:
        from generation.sentiment_labels import DatasetError, label_map_parse
        from generation.text.tables import CsvError, csv_read
        from monitoring.entities import entities_extract
        from workers.evaluation.alert_summaries import alerts_from_items, csv_item

        try:
            mapping = label_map_parse(label_map)
            table = csv_read(path, columns=[c for c in (text_col, label_col, entity_col) if c])
        except (DatasetError, CsvError) as exc:
            raise CommandError(f"{path}: {exc}") from None
        items = []
        for line, row in zip(table.lines, table.rows):
            text = (row.get(text_col) or "").strip()
            raw = (row.get(label_col) or "").strip()
            label = mapping.get(raw, raw.lower())
            if not text or label not in ("negative", "neutral", "positive"):
                raise CommandError(f"{path}, line {line}: empty {text_col!r} or label {raw!r} not in the label map")
            given = [e.strip().upper() for e in re.split(r"[,;]", row.get(entity_col) or "") if e.strip()] if entity_col else []
            entities = given or entities_extract(text)
            items.append(csv_item(pk=line, text=text, label=label, entities=entities))
        return alerts_from_items(items, evidence=settings.GENAI_ALERT_EVIDENCE_ITEMS, min_items=min_items)

    def _alerts_from_db(self, limit: int) -> list:
        from monitoring.models import Alert, NewsItem
        from workers.evaluation.alert_summaries import EvalAlert

        alerts = []
        for alert in Alert.objects.filter(fired_at__isnull=False).order_by("-fired_at", "-id")[:limit]:
            items = NewsItem.objects.in_bulk(alert.item_ids)
            alerts.append(EvalAlert(entity=alert.entity, items=[items[i] for i in alert.item_ids if i in items], alert_id=alert.pk))
        return [a for a in alerts if a.items]
