import json
from core import publisher, jobs, connections
from api import cursor

def test_probe(aws):
    aws.put_job("j1")
    for start in [{"jobId": "", "createdAt": "", "userId": "alice"}, {"jobId": "x", "createdAt": "y", "userId": "alice"}]:
        try:
            print(jobs.query_page(user_id="alice", project_id=None, status=None, limit=5, start_key=start))
        except Exception as e:
            print("ERR", repr(e)[:200])
    try:
        print(jobs.get("x" * 3000))
    except Exception as e:
        print("ERR", repr(e)[:200])
    for a in [10**40, 10**37]:
        try:
            print(publisher.events_after("j1", a))
        except Exception as e:
            print("ERR", type(e), repr(e)[:200])
