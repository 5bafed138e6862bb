"""Made-up names and places for seeded data (no real people)."""

FIRST_NAMES = (
    "Lea",
    "John",
    "Maya",
    "Noah",
    "Chloe",
    "Liam",
    "Emma",
    "Olivia",
    "Lucas",
    "Zoe",
    "Nathan",
    "Alice",
    "Samuel",
    "Ines",
    "Hugo",
    "Clara",
    "Adam",
    "Jade",
    "Felix",
    "Rose",
    "Omar",
    "Yara",
    "Theo",
    "Mila",
    "Kenji",
    "Aiko",
    "Ravi",
    "Priya",
    "Diego",
    "Lucia",
)
LAST_NAMES = (
    "Martin",
    "Smith",
    "Ortiz",
    "Tremblay",
    "Gagnon",
    "Roy",
    "Cote",
    "Bouchard",
    "Gauthier",
    "Morin",
    "Lavoie",
    "Fortin",
    "Nguyen",
    "Chen",
    "Patel",
    "Garcia",
    "Rossi",
    "Muller",
    "Dubois",
    "Lambert",
    "Leroy",
    "Moreau",
    "Fournier",
    "Girard",
    "Bernard",
    "Petit",
)
STORES = (
    ("Montreal", "America/Toronto", "CAD"),
    ("Vancouver", "America/Vancouver", "CAD"),
    ("Paris", "Europe/Paris", "EUR"),
    ("Toronto", "America/Toronto", "CAD"),
    ("New York", "America/New_York", "USD"),
    ("Lyon", "Europe/Paris", "EUR"),
    ("Chicago", "America/Chicago", "USD"),
    ("Calgary", "America/Edmonton", "CAD"),
)
POSITIONS = ("Stylist", "Senior stylist", "Tailor", "Beauty advisor", "Store manager")
# (category, [(service name, minutes, price, booking method)])
CATALOGUE = (
    (
        "Styling",
        (
            ("Personal styling", 60, "0.00"),
            ("Wardrobe consultation", 45, "25.00"),
            ("Express styling", 30, "0.00"),
        ),
    ),
    ("Alterations", (("Alterations fitting", 60, "15.00"), ("Hemming", 30, "10.00"))),
    ("Beauty", (("Makeup session", 45, "40.00"), ("Skin consultation", 30, "0.00"))),
)
GROUP_SERVICES = (("Style masterclass", 90, "20.00"), ("Spring trends workshop", 60, "0.00"))
REQUESTS = ("", "", "", "Looking for a wedding outfit", "Bring my own fabric", "Wheelchair access")
NOTES = ("", "", "", "VIP client", "Prefers morning", "Follow up on order")
