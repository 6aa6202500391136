import json, threading
from core import publisher, jobs

def test_probe(aws):
    assert str(aws.efs).startswith("/tmp") or "pytest" in str(aws.efs), aws.efs
    job = aws.put_job("j1")
    errors = []
    def work():
        try:
            for _ in range(10):
                publisher.publish(job, {"type": "job.log", "lines": ["x"]})
        except Exception as e:
            errors.append(e)
    ts = [threading.Thread(target=work) for _ in range(8)]
    [t.start() for t in ts]; [t.join() for t in ts]
    ev = aws.events("j1")
    print(errors, len(ev), jobs.get("j1")["seq"], sorted(e["seq"] for e in ev) == list(range(1, 81)))
