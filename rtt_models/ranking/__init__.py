"""At-risk ranking and intervention lists, read from scores and features.

* :func:`rank_customers`: lapse risk, value at stake, tiers, reasons and
  dates per customer, in rank order;
* :func:`select_campaign`: top N, minimum value or risk, per-segment
  quotas and an exclusion list, with counts of who each filter removed;
* :func:`export_table`: CSV safe against spreadsheet formula injection, or
  Parquet, written atomically;
* :func:`segment_report` and :func:`plot_segment_report`: repeat-purchase
  timing by segment and by first-purchase cohort over several cut-offs.
"""

from rtt_models.ranking.campaign import Campaign, CampaignSummary, parse_quotas, read_exclusion_list, select_campaign
from rtt_models.ranking.export import export_table, neutralise_formulas
from rtt_models.ranking.priority import TIERS, TierThresholds, rank_customers
from rtt_models.ranking.segments import plot_segment_report, segment_report

__all__ = [
    "TIERS",
    "Campaign",
    "CampaignSummary",
    "TierThresholds",
    "export_table",
    "neutralise_formulas",
    "parse_quotas",
    "plot_segment_report",
    "rank_customers",
    "read_exclusion_list",
    "segment_report",
    "select_campaign",
]
