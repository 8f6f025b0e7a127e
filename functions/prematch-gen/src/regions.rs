//! Region profiles: the time zones and languages the users of each generated region live with.

/// What the users of one region look like: where they live and what they speak.
pub(crate) struct RegionProfile {
    /// Base name; the n-th repetition of a profile gets a `-n` suffix.
    pub name: &'static str,
    /// IANA time zones with relative weights (the first is the largest city).
    pub timezones: &'static [(&'static str, u32)],
    /// Language codes with relative weights (how many users speak it).
    pub languages: &'static [(&'static str, u32)],
    /// Relative size of the region.
    pub weight: u32,
}

/// The profiles, in the order `region_names` hands them out. Every region mixes zones with
/// different offsets, and between them the set holds half- and three-quarter-hour offsets
/// (Kolkata, Kathmandu, Adelaide, Darwin, St John's, Chatham) and zones on either side of the
/// equator that change for daylight saving on different dates.
pub(crate) const PROFILES: &[RegionProfile] = &[
    RegionProfile {
        name: "eu-west",
        timezones: &[
            ("Europe/London", 40),
            ("Europe/Paris", 25),
            ("Europe/Madrid", 15),
            ("Europe/Dublin", 10),
            ("Europe/Lisbon", 8),
            ("Atlantic/Reykjavik", 2),
        ],
        languages: &[
            ("en", 70),
            ("fr", 30),
            ("es", 22),
            ("pt", 10),
            ("de", 8),
            ("it", 6),
            ("ga", 2),
        ],
        weight: 100,
    },
    RegionProfile {
        name: "us-east",
        timezones: &[
            ("America/New_York", 50),
            ("America/Toronto", 15),
            ("America/Chicago", 15),
            ("America/Detroit", 8),
            ("America/Halifax", 6),
            ("America/St_Johns", 4),
            ("America/Havana", 2),
        ],
        languages: &[
            ("en", 90),
            ("es", 25),
            ("fr", 8),
            ("zh", 4),
            ("pt", 3),
            ("ht", 2),
        ],
        weight: 90,
    },
    RegionProfile {
        name: "ap-south",
        timezones: &[
            ("Asia/Kolkata", 60),
            ("Asia/Karachi", 12),
            ("Asia/Dhaka", 12),
            ("Asia/Colombo", 8),
            ("Asia/Kathmandu", 6),
            ("Asia/Dubai", 2),
        ],
        languages: &[
            ("hi", 55),
            ("en", 50),
            ("bn", 15),
            ("ta", 10),
            ("ur", 10),
            ("te", 8),
            ("ne", 4),
            ("si", 3),
        ],
        weight: 80,
    },
    RegionProfile {
        name: "eu-central",
        timezones: &[
            ("Europe/Berlin", 45),
            ("Europe/Warsaw", 18),
            ("Europe/Vienna", 12),
            ("Europe/Zurich", 10),
            ("Europe/Prague", 8),
            ("Europe/Helsinki", 5),
            ("Europe/Istanbul", 2),
        ],
        languages: &[
            ("de", 60),
            ("en", 55),
            ("pl", 18),
            ("cs", 8),
            ("fr", 8),
            ("fi", 5),
            ("tr", 4),
        ],
        weight: 70,
    },
    RegionProfile {
        name: "ap-southeast",
        timezones: &[
            ("Australia/Sydney", 35),
            ("Australia/Melbourne", 20),
            ("Australia/Brisbane", 12),
            ("Australia/Adelaide", 10),
            ("Australia/Perth", 8),
            ("Australia/Darwin", 4),
            ("Pacific/Auckland", 9),
            ("Pacific/Chatham", 2),
        ],
        languages: &[
            ("en", 95),
            ("zh", 10),
            ("vi", 5),
            ("mi", 3),
            ("it", 3),
            ("el", 2),
        ],
        weight: 55,
    },
    RegionProfile {
        name: "us-west",
        timezones: &[
            ("America/Los_Angeles", 50),
            ("America/Vancouver", 12),
            ("America/Denver", 15),
            ("America/Phoenix", 10),
            ("America/Anchorage", 3),
            ("Pacific/Honolulu", 4),
        ],
        languages: &[
            ("en", 90),
            ("es", 30),
            ("zh", 8),
            ("tl", 5),
            ("ko", 4),
            ("vi", 3),
        ],
        weight: 75,
    },
    RegionProfile {
        name: "sa-east",
        timezones: &[
            ("America/Sao_Paulo", 50),
            ("America/Argentina/Buenos_Aires", 20),
            ("America/Santiago", 12),
            ("America/Bogota", 10),
            ("America/Caracas", 5),
            ("America/Montevideo", 3),
        ],
        languages: &[("pt", 55), ("es", 50), ("en", 25), ("it", 3)],
        weight: 50,
    },
    RegionProfile {
        name: "ap-northeast",
        timezones: &[
            ("Asia/Tokyo", 45),
            ("Asia/Seoul", 25),
            ("Asia/Shanghai", 15),
            ("Asia/Taipei", 8),
            ("Asia/Hong_Kong", 7),
        ],
        languages: &[("ja", 45), ("ko", 25), ("zh", 30), ("en", 35)],
        weight: 60,
    },
    RegionProfile {
        name: "af-south",
        timezones: &[
            ("Africa/Johannesburg", 50),
            ("Africa/Nairobi", 20),
            ("Africa/Lagos", 20),
            ("Africa/Casablanca", 10),
        ],
        languages: &[
            ("en", 80),
            ("af", 15),
            ("zu", 12),
            ("sw", 12),
            ("yo", 8),
            ("fr", 8),
            ("ar", 6),
        ],
        weight: 30,
    },
    RegionProfile {
        name: "me-central",
        timezones: &[
            ("Asia/Dubai", 35),
            ("Asia/Riyadh", 30),
            ("Asia/Tehran", 20),
            ("Asia/Jerusalem", 10),
            ("Asia/Kabul", 5),
        ],
        languages: &[
            ("ar", 60),
            ("en", 50),
            ("fa", 20),
            ("he", 10),
            ("ur", 6),
            ("ps", 3),
        ],
        weight: 25,
    },
];

/// The profile behind the `index`-th region.
pub(crate) fn profile(index: usize) -> &'static RegionProfile {
    &PROFILES[index % PROFILES.len()]
}

/// The name of the `index`-th region: the profile's name, with `-2`, `-3`, ... once profiles repeat.
pub(crate) fn name(index: usize) -> String {
    let base = profile(index).name;
    match index / PROFILES.len() {
        0 => base.to_string(),
        round => format!("{base}-{}", round + 1),
    }
}
