"""Times in the admin as ``2026-12-07 10:00:04 WAT``: ISO order, seconds, and the zone beside them,
so a time read in the admin can be matched with the API's and the logs' UTC ``…Z`` times."""

DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"
DATETIME_INPUT_FORMATS = [
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%d %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
]
DATE_INPUT_FORMATS = ["%Y-%m-%d", "%d/%m/%Y"]
