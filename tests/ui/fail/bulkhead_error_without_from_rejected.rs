use resilience::bulkhead;

#[derive(Debug)]
struct DbError;

#[bulkhead(max_concurrent = 4)]
fn query(id: u64) -> Result<u64, DbError> {
    Ok(id)
}

fn main() {
    let _ = query(1);
}
