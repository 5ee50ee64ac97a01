use resilience::cached;

struct Report(String);

// A blocking fn: the same error, on the same place.
#[cached(ttl = "60s")]
fn report(day: u32) -> Report {
    Report(format!("day {day}"))
}

fn main() {
    let _ = report(1);
}
