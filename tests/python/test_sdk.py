"""The Python docker SDK (docker 7.1, its high-level client) against berthd.

Run by tests/root_sdk.rs, which starts a berthd, imports busybox:latest into it and runs
this file with DOCKER_HOST pointing at it, one test class per Rust test:

    DOCKER_HOST=unix:///path/api.sock python3 tests/python/test_sdk.py -v Containers

Plain unittest (nothing to install). Every container runs with network_mode="none" (the
tests have no bridge); the networks API is left out. A call berthd refuses is tested as a
refusal: a docker.errors.APIError with a 4xx status that names what is refused.
"""

import io
import tarfile
import time
import unittest
import uuid

import docker
from docker.errors import APIError, ImageNotFound, NotFound

IMAGE = "busybox:latest"
NONE = {"network_mode": "none"}


def client():
    return docker.from_env(timeout=60)


def uniq(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Base(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = client()
        cls.made = []

    @classmethod
    def tearDownClass(cls):
        for ctr in cls.made:
            try:
                ctr.remove(force=True)
            except NotFound:
                pass
        cls.c.close()

    def run_d(self, cmd, **kw):
        """containers.run detached, removed at the end of the class."""
        ctr = self.c.containers.run(IMAGE, cmd, detach=True, **NONE, **kw)
        self.made.append(ctr)
        return ctr

    def create(self, cmd, **kw):
        ctr = self.c.containers.create(IMAGE, cmd, **NONE, **kw)
        self.made.append(ctr)
        return ctr

    def wait_status(self, ctr, status, secs=10):
        deadline = time.time() + secs
        while time.time() < deadline:
            ctr.reload()
            if ctr.status == status:
                return
            time.sleep(0.05)
        self.fail(f"{ctr.name} is {ctr.status}, not {status}")


class Containers(Base):
    def test_run_attached_with_remove(self):
        name = uniq("run-rm")
        out = self.c.containers.run(
            IMAGE,
            ["sh", "-c", 'echo "$FOO"; pwd; id -u; id -g'],
            name=name,
            remove=True,
            environment={"FOO": "bar baz"},
            working_dir="/tmp",
            user="1000:1001",
            labels={"suite": "sdk"},
            **NONE,
        )
        self.assertEqual(out.decode(), "bar baz\n/tmp\n1000\n1001\n")
        # remove=True: gone once run returns.
        self.assertEqual(self.c.containers.list(all=True, filters={"name": name}), [])

    def test_run_options_reach_the_container(self):
        """The SDK's encoding of run's options, each seen inside the container."""
        from docker.types import Mount, Ulimit

        def run(cmd, **kw):
            return self.c.containers.run(IMAGE, cmd, remove=True, **NONE, **kw).decode()

        # The native driver's init, or docker-init under --exec-driver oci.
        self.assertIn(run(["cat", "/proc/1/comm"], init=True), ("berthd-init\n", "docker-init\n"))
        self.assertIn("Read-only file system", run(["sh", "-c", "touch /x 2>&1; true"], read_only=True))
        self.assertRegex(
            run(["grep", " /t ", "/proc/mounts"], tmpfs={"/t": "size=1m"}), r"tmpfs /t tmpfs .*size=1024k"
        )
        self.assertEqual(
            run(["grep", "CapEff", "/proc/self/status"], cap_drop=["ALL"]),
            "CapEff:\t0000000000000000\n",
        )
        self.assertEqual(run(["cat", "/proc/sys/kernel/msgmax"], sysctls={"kernel.msgmax": "65536"}), "65536\n")
        self.assertEqual(
            run(["sh", "-c", "ulimit -n; ulimit -Hn"], ulimits=[Ulimit(name="nofile", soft=1024, hard=2048)]),
            "1024\n2048\n",
        )
        self.assertEqual(run(["hostname"], hostname="hh"), "hh\n")
        self.assertEqual(run(["grep", "foo", "/etc/hosts"], extra_hosts={"foo": "1.2.3.4"}), "1.2.3.4\tfoo\n")
        self.assertEqual(
            run(["cat", "/etc/resolv.conf"], dns=["9.9.9.9"], dns_search=["ex.com"], dns_opt=["ndots:2"]),
            "nameserver 9.9.9.9\nsearch ex.com\noptions ndots:2\n",
        )
        self.assertEqual(run(["x"], entrypoint=["echo", "ep"]), "ep x\n")
        self.assertIn("size=8192k", run(["grep", "/dev/shm", "/proc/mounts"], shm_size="8m"))
        vol = uniq("mvol")
        self.assertEqual(
            run(
                ["sh", "-c", "echo in > /mv/f; cat /mb/hostname; grep ' /mt ' /proc/mounts | cut -d' ' -f3"],
                mounts=[
                    Mount("/mv", vol, type="volume"),
                    Mount("/mb", "/etc", type="bind", read_only=True),
                    Mount("/mt", None, type="tmpfs", tmpfs_size=1 << 20),
                ],
            ),
            open("/etc/hostname").read() + "tmpfs\n",
        )
        self.assertEqual(run(["cat", "/mv/f"], volumes=[f"{vol}:/mv"]), "in\n")
        self.c.volumes.get(vol).remove()
        self.assertEqual(run(["cat", "/proc/self/oom_score_adj"], oom_score_adj=100), "100\n")
        self.assertEqual(run(["id", "-G"], group_add=["123"]), "0 123\n")
        self.assertEqual(
            run(["grep", "NoNewPrivs", "/proc/self/status"], security_opt=["no-new-privileges"]),
            "NoNewPrivs:\t1\n",
        )
        self.assertEqual(run(["echo", "x"], tty=True), "x\r\n")

    def test_run_attached_failure_raises_container_error(self):
        with self.assertRaises(docker.errors.ContainerError) as cm:
            self.c.containers.run(
                IMAGE, ["sh", "-c", "echo oops >&2; exit 3"], remove=True, **NONE
            )
        self.assertEqual(cm.exception.exit_status, 3)
        self.assertIn(b"oops", cm.exception.stderr)

    def test_run_detached_with_remove(self):
        ctr = self.c.containers.run(IMAGE, ["true"], detach=True, remove=True, **NONE)
        deadline = time.time() + 10
        while time.time() < deadline:
            # list() inspects each container it lists: the removal may come in between
            # (the SDK's own race, as with dockerd), which is a 404 and means gone.
            try:
                if not self.c.containers.list(all=True, filters={"id": ctr.id}):
                    break
            except NotFound:
                break
            time.sleep(0.05)
        with self.assertRaises(NotFound):
            ctr.reload()

    def test_prune(self):
        label = uniq("prune")
        done = self.run_d(["true"], labels={"pr": label})
        done.wait(timeout=30)
        alive = self.run_d(["sleep", "600"], labels={"pr": label})
        got = self.c.containers.prune(filters={"label": f"pr={label}"})
        self.assertEqual(got["ContainersDeleted"], [done.id])
        self.assertIsInstance(got["SpaceReclaimed"], int)
        alive.reload()
        alive.kill()

    def test_run_detached_labels_env_wait(self):
        ctr = self.run_d(
            ["sh", "-c", 'echo "$A-$B"; exit 5'],
            labels={"x": "1", "y": "two"},
            environment=["A=1", "B=2"],
        )
        self.assertEqual(ctr.wait(timeout=30), {"StatusCode": 5, "Error": None})
        ctr.reload()
        self.assertEqual(ctr.labels, {"x": "1", "y": "two"})
        self.assertEqual(ctr.status, "exited")
        self.assertEqual(ctr.attrs["State"]["ExitCode"], 5)
        self.assertIn("A=1", ctr.attrs["Config"]["Env"])
        self.assertEqual(ctr.logs(), b"1-2\n")

    def test_create_start_list_get(self):
        label = uniq("lst")
        a = self.create(["sleep", "600"], labels={"lst": label}, name=uniq("a"))
        b = self.create(["true"], labels={"lst": label})
        self.assertEqual(a.status, "created")
        a.start()
        self.wait_status(a, "running")
        running = self.c.containers.list(filters={"label": f"lst={label}"})
        self.assertEqual([x.id for x in running], [a.id])
        every = self.c.containers.list(all=True, filters={"label": f"lst={label}"})
        self.assertEqual({x.id for x in every}, {a.id, b.id})
        created = self.c.containers.list(
            all=True, filters={"label": f"lst={label}", "status": "created"}
        )
        self.assertEqual([x.id for x in created], [b.id])
        self.assertEqual(
            [x.id for x in self.c.containers.list(filters={"name": a.name})], [a.id]
        )
        self.assertEqual(
            [x.id for x in self.c.containers.list(filters={"id": a.id[:12]})], [a.id]
        )
        got = self.c.containers.get(a.name)
        self.assertEqual(got.id, a.id)
        self.assertEqual(self.c.containers.get(a.id[:10]).name, a.name)
        self.assertEqual(got.image.id, self.c.images.get(IMAGE).id)
        with self.assertRaises(NotFound):
            self.c.containers.get(uniq("nope"))
        a.kill()

    def test_logs_stream_timestamps_tail(self):
        ctr = self.run_d(["sh", "-c", "for i in 1 2 3 4; do echo line$i; done; sleep 1"])
        self.assertEqual(ctr.wait(timeout=30)["StatusCode"], 0)
        self.assertEqual(ctr.logs(), b"line1\nline2\nline3\nline4\n")
        self.assertEqual(ctr.logs(tail=2), b"line3\nline4\n")
        stamped = ctr.logs(timestamps=True).decode().splitlines()
        self.assertEqual(len(stamped), 4)
        for i, line in enumerate(stamped, 1):
            ts, text = line.split(" ", 1)
            self.assertEqual(text, f"line{i}")
            self.assertRegex(ts, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$")
        # A stream of a running container follows it until it exits.
        live = self.run_d(["sh", "-c", "echo a; sleep 0.5; echo b; sleep 0.5; echo c"])
        got = b"".join(live.logs(stream=True, follow=True))
        self.assertEqual(got, b"a\nb\nc\n")
        # stdout and stderr apart.
        both = self.run_d(["sh", "-c", "echo out; echo err >&2"])
        both.wait(timeout=30)
        self.assertEqual(both.logs(stdout=True, stderr=False), b"out\n")
        self.assertEqual(both.logs(stdout=False, stderr=True), b"err\n")

    def test_exec_run(self):
        ctr = self.run_d(["sleep", "600"])
        r = ctr.exec_run(["sh", "-c", "echo hi; exit 4"])
        self.assertEqual((r.exit_code, r.output), (4, b"hi\n"))
        r = ctr.exec_run("pwd", workdir="/etc", environment={"Q": "1"})
        self.assertEqual((r.exit_code, r.output), (0, b"/etc\n"))
        r = ctr.exec_run(["sh", "-c", "echo $Q"], environment={"Q": "qq"}, user="nobody")
        self.assertEqual(r.output, b"qq\n")
        r = ctr.exec_run(["sh", "-c", "echo o; echo e >&2"], demux=True)
        self.assertEqual(r.output, (b"o\n", b"e\n"))
        r = ctr.exec_run(["sh", "-c", "echo 1; sleep 0.3; echo 2"], stream=True)
        self.assertIsNone(r.exit_code)
        self.assertEqual(b"".join(r.output), b"1\n2\n")
        r = ctr.exec_run(["id", "-u"], user="1234")
        self.assertEqual(r.output, b"1234\n")
        # dockerd's translateContainerdStartErr: 127 and the runtime's words.
        r = ctr.exec_run(["nosuchcommand"])
        self.assertEqual(r.exit_code, 127)
        self.assertIn(b"executable file not found", r.output)
        ctr.kill()

    def test_attach(self):
        ctr = self.run_d(
            ["sh", "-c", "sleep 0.5; for i in 1 2 3; do echo n$i; sleep 0.2; done"]
        )
        got = b"".join(ctr.attach(stdout=True, stderr=True, stream=True, logs=True))
        self.assertEqual(got, b"n1\nn2\nn3\n")
        self.assertEqual(ctr.wait(timeout=30)["StatusCode"], 0)
        # Not streamed: the whole output at the exit.
        ctr2 = self.run_d(["sh", "-c", "sleep 0.3; echo whole"])
        self.assertEqual(ctr2.attach(stdout=True, stream=False, logs=True), b"whole\n")

    def test_stop_restart_kill_remove_wait(self):
        ctr = self.run_d(["sleep", "600"])
        self.wait_status(ctr, "running")
        pid = ctr.attrs["State"]["Pid"]
        ctr.stop(timeout=1)
        self.assertEqual(ctr.wait(timeout=30)["StatusCode"], 137)
        ctr.restart(timeout=1)
        self.wait_status(ctr, "running")
        self.assertNotEqual(ctr.attrs["State"]["Pid"], pid)
        ctr.kill(signal="SIGUSR1")  # sleep as pid 1 ignores it
        time.sleep(0.2)
        self.wait_status(ctr, "running")
        ctr.kill()
        self.assertEqual(ctr.wait(timeout=30), {"StatusCode": 137, "Error": None})
        with self.assertRaises(APIError) as cm:
            ctr.kill()
        self.assertEqual(cm.exception.status_code, 409)
        # wait with a condition on a created container.
        fresh = self.create(["sh", "-c", "exit 9"])
        self.assertEqual(fresh.wait(condition="not-running", timeout=10)["StatusCode"], 0)
        fresh.start()
        self.assertEqual(fresh.wait(timeout=30)["StatusCode"], 9)
        running = self.run_d(["sleep", "600"])
        with self.assertRaises(APIError) as cm:
            running.remove()
        self.assertEqual(cm.exception.status_code, 409)
        running.remove(force=True)
        ctr.remove(v=True)
        for x in (ctr, running):
            with self.assertRaises(NotFound):
                x.reload()

    def test_stats_top(self):
        ctr = self.run_d(["sleep", "600"])
        self.wait_status(ctr, "running")
        st = ctr.stats(stream=False)
        self.assertEqual(st["id"], ctr.id)
        self.assertEqual(st["name"], "/" + ctr.name)
        self.assertGreater(st["memory_stats"]["usage"], 0)
        self.assertIn("cpu_usage", st["cpu_stats"])
        self.assertGreater(st["pids_stats"]["current"], 0)
        stream = ctr.stats(decode=True, stream=True)
        first = next(stream)
        self.assertEqual(first["id"], ctr.id)
        stream.close()
        top = ctr.top()
        self.assertIn("PID", top["Titles"])
        cmd = top["Titles"].index("CMD")
        self.assertEqual([p[cmd] for p in top["Processes"]], ["sleep 600"])
        top = ctr.top(ps_args="-o pid,comm")
        self.assertEqual(top["Titles"], ["PID", "COMMAND"])
        ctr.kill()

    def test_update(self):
        ctr = self.run_d(["sleep", "600"])
        self.wait_status(ctr, "running")
        ctr.update(
            mem_limit="64m",
            memswap_limit="128m",
            restart_policy={"Name": "on-failure", "MaximumRetryCount": 3},
        )
        ctr.reload()
        hc = ctr.attrs["HostConfig"]
        self.assertEqual(hc["Memory"], 64 << 20)
        self.assertEqual(hc["RestartPolicy"], {"Name": "on-failure", "MaximumRetryCount": 3})
        # The running container's cgroup has it (v1 or v2, as the container sees it).
        r = ctr.exec_run(
            ["sh", "-c", "cat /sys/fs/cgroup/memory.max 2>/dev/null"
             " || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"]
        )
        self.assertEqual(r.output.strip(), str(64 << 20).encode())
        ctr.update(restart_policy={"Name": "always"})
        ctr.reload()
        self.assertEqual(ctr.attrs["HostConfig"]["RestartPolicy"]["Name"], "always")
        # Below dockerd's 6 MB minimum: refused, and nothing changes.
        with self.assertRaises(APIError) as cm:
            ctr.update(mem_limit="1k")
        self.assertEqual(cm.exception.status_code // 100, 4)
        self.assertIn("Minimum memory limit", cm.exception.explanation)
        ctr.reload()
        self.assertEqual(ctr.attrs["HostConfig"]["Memory"], 64 << 20)
        ctr.remove(force=True)

    def test_rename_pause_unpause(self):
        ctr = self.run_d(["sleep", "600"], name=uniq("old"))
        new = uniq("new")
        ctr.rename(new)
        ctr.reload()
        self.assertEqual(ctr.name, new)
        self.assertEqual(self.c.containers.get(new).id, ctr.id)
        ctr.pause()
        ctr.reload()
        self.assertEqual(ctr.status, "paused")
        self.assertEqual(
            [x.id for x in self.c.containers.list(filters={"status": "paused", "id": ctr.id})],
            [ctr.id],
        )
        with self.assertRaises(APIError) as cm:
            ctr.pause()
        self.assertEqual(cm.exception.status_code, 409)
        ctr.unpause()
        self.wait_status(ctr, "running")
        other = self.run_d(["true"], name=uniq("taken"))
        with self.assertRaises(APIError) as cm:
            ctr.rename(other.name)
        self.assertEqual(cm.exception.status_code, 409)
        ctr.kill()

    def test_commit_diff_archive_export(self):
        ctr = self.run_d(
            ["sh", "-c", "echo made > /made.txt; rm /bin/sync; mkdir /newdir; sleep 600"]
        )
        deadline = time.time() + 10
        while time.time() < deadline:
            diff = {(d["Path"], d["Kind"]) for d in ctr.diff()}
            if ("/newdir", 1) in diff:
                break
            time.sleep(0.05)
        # Kind: 0 modified, 1 added, 2 deleted.
        self.assertIn(("/made.txt", 1), diff)
        self.assertIn(("/bin/sync", 2), diff)
        self.assertIn(("/newdir", 1), diff)
        # put_archive then get_archive.
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            data = b"from the sdk\n"
            info = tarfile.TarInfo("put.txt")
            info.size = len(data)
            info.mode = 0o640
            t.addfile(info, io.BytesIO(data))
        self.assertTrue(ctr.put_archive("/newdir", buf.getvalue()))
        self.assertEqual(ctr.exec_run(["cat", "/newdir/put.txt"]).output, b"from the sdk\n")
        stream, stat = ctr.get_archive("/newdir/put.txt")
        self.assertEqual(stat["name"], "put.txt")
        self.assertEqual(stat["size"], 13)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as t:
            self.assertEqual(t.extractfile("put.txt").read(), b"from the sdk\n")
        with self.assertRaises(NotFound):
            ctr.get_archive("/no/such/path")
        # commit: an image with the change, the author and message, a new CMD.
        repo = uniq("committed")
        img = ctr.commit(
            repository=repo,
            tag="v1",
            message="sdk commit",
            author="berth tests",
            changes=['CMD ["cat", "/made.txt"]'],
        )
        self.assertIn(f"{repo}:v1", img.tags)
        self.assertEqual(img.attrs["Author"], "berth tests")
        # The message goes to the history (dockerd's NewChildImage: the image's own
        # Comment is only an import's).
        self.assertEqual(img.attrs["Comment"], "")
        self.assertEqual(img.history()[0]["Comment"], "sdk commit")
        out = self.c.containers.run(f"{repo}:v1", remove=True, **NONE)
        self.assertEqual(out, b"made\n")
        # export: the whole filesystem as a tar stream.
        names = set()
        with tarfile.open(fileobj=io.BytesIO(b"".join(ctr.export())), mode="r|") as t:
            for m in t:
                names.add(m.name.lstrip("./").rstrip("/"))
        self.assertIn("made.txt", names)
        self.assertIn("newdir/put.txt", names)
        self.assertIn("bin/sh", names)
        self.assertNotIn("bin/sync", names)
        ctr.remove(force=True)
        self.c.images.remove(f"{repo}:v1")


class Images(Base):
    def test_list_get_tag_history_remove(self):
        base = self.c.images.get(IMAGE)
        self.assertIn(IMAGE, base.tags)
        ids = [i.id for i in self.c.images.list()]
        self.assertIn(base.id, ids)
        self.assertEqual([i.id for i in self.c.images.list(name="busybox")], [base.id])
        repo = uniq("tagged")
        self.assertTrue(base.tag(repo, "t1"))
        self.assertEqual(self.c.images.get(f"{repo}:t1").id, base.id)
        self.assertEqual(
            [i.id for i in self.c.images.list(filters={"reference": f"{repo}:*"})], [base.id]
        )
        hist = base.history()
        self.assertGreaterEqual(len(hist), 1)
        self.assertEqual(hist[0]["Id"], base.id)
        self.assertIn("Size", hist[0])
        self.assertIsInstance(base.attrs["RootFS"]["Layers"], list)
        self.c.images.remove(f"{repo}:t1")
        with self.assertRaises(ImageNotFound):
            self.c.images.get(f"{repo}:t1")
        self.assertEqual(self.c.images.get(IMAGE).id, base.id)
        with self.assertRaises(ImageNotFound):
            self.c.images.get("no-such-image:here")

    def test_remove_in_use_conflicts(self):
        repo = uniq("inuse")
        self.c.images.get(IMAGE).tag(repo, "x")
        ctr = self.run_d(["sleep", "600"], name=uniq("user"))
        ctr2 = self.c.containers.run(f"{repo}:x", ["true"], detach=True, **NONE)
        self.made.append(ctr2)
        ctr2.wait(timeout=30)
        # The tag goes (other tags hold the image); the image itself is in use.
        self.c.images.remove(f"{repo}:x")
        with self.assertRaises(APIError) as cm:
            self.c.images.remove(self.c.images.get(IMAGE).id)
        self.assertEqual(cm.exception.status_code, 409)
        ctr.kill()

    def test_save_load(self):
        img = self.c.images.get(IMAGE)
        repo = uniq("saved")
        img.tag(repo, "s")
        data = b"".join(self.c.images.get(f"{repo}:s").save(named=f"{repo}:s"))
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            names = t.getnames()
        self.assertIn("manifest.json", names)
        self.assertIn("repositories", names)
        self.c.images.remove(f"{repo}:s")
        loaded = self.c.images.load(data)
        self.assertEqual([i.id for i in loaded], [img.id])
        self.assertIn(f"{repo}:s", self.c.images.get(f"{repo}:s").tags)
        out = self.c.containers.run(f"{repo}:s", ["echo", "loaded"], remove=True, **NONE)
        self.assertEqual(out, b"loaded\n")
        self.c.images.remove(f"{repo}:s")

    def test_prune(self):
        # An untagged image: a commit without a repository.
        ctr = self.run_d(["sh", "-c", "echo x > /x"])
        ctr.wait(timeout=30)
        dangling = ctr.commit()
        self.assertEqual(dangling.tags, [])
        ctr.remove()
        got = self.c.images.prune(filters={"dangling": True})
        deleted = [d.get("Deleted") for d in got["ImagesDeleted"] or []]
        self.assertIn(dangling.id, deleted)
        self.assertIsInstance(got["SpaceReclaimed"], int)
        with self.assertRaises(ImageNotFound):
            self.c.images.get(dangling.id)
        self.c.images.get(IMAGE)


class Volumes(Base):
    def test_create_list_get_remove_prune(self):
        name = uniq("vol")
        v = self.c.volumes.create(name, labels={"k": "v"})
        self.assertEqual(v.name, name)
        self.assertEqual(v.attrs["Driver"], "local")
        self.assertEqual(v.attrs["Labels"], {"k": "v"})
        self.assertIn(name, [x.name for x in self.c.volumes.list()])
        self.assertEqual([x.name for x in self.c.volumes.list(filters={"label": "k=v"})], [name])
        self.assertEqual(self.c.volumes.get(name).id, name)
        # Used by a container: the data is there, and rm conflicts.
        out = self.c.containers.run(
            IMAGE, ["sh", "-c", "echo kept > /v/f"], volumes={name: {"bind": "/v", "mode": "rw"}},
            **NONE, detach=True,
        )
        self.made.append(out)
        out.wait(timeout=30)
        got = self.c.containers.run(
            IMAGE, ["cat", "/v/f"], volumes=[f"{name}:/v:ro"], remove=True, **NONE
        )
        self.assertEqual(got, b"kept\n")
        with self.assertRaises(APIError) as cm:
            v.remove()
        self.assertEqual(cm.exception.status_code, 409)
        out.remove()
        v.remove()
        with self.assertRaises(NotFound):
            self.c.volumes.get(name)
        # prune: the unused anonymous or named volumes (API 1.41: all unused ones).
        unused = self.c.volumes.create(uniq("unused"))
        kept = self.c.volumes.create(uniq("used"))
        user = self.create(["true"], volumes=[f"{kept.name}:/k"])
        got = self.c.volumes.prune()
        self.assertIn(unused.name, got["VolumesDeleted"])
        self.assertNotIn(kept.name, got["VolumesDeleted"] or [])
        self.assertIsInstance(got["SpaceReclaimed"], int)
        user.remove()
        kept.remove(force=True)


class System(Base):
    def test_info_version_ping_df(self):
        self.assertTrue(self.c.ping())
        info = self.c.info()
        self.assertEqual(info["OSType"], "linux")
        self.assertIn("Containers", info)
        self.assertGreaterEqual(info["Images"], 1)
        ver = self.c.version()
        self.assertEqual(ver["ApiVersion"], self.c.api.api_version)
        self.assertEqual(ver["Os"], "linux")
        df = self.c.df()
        for key in ("LayersSize", "Images", "Containers", "Volumes"):
            self.assertIn(key, df)
        self.assertIn(self.c.images.get(IMAGE).id, [i["Id"] for i in df["Images"]])

    def test_events(self):
        since = time.time() - 1
        ctr = self.c.containers.run(
            IMAGE, ["sh", "-c", "exit 2"], detach=True, labels={"ev": "1"}, **NONE
        )
        ctr.wait(timeout=30)
        ctr.remove()
        until = time.time() + 1
        time.sleep(1.1)
        evs = [
            e
            for e in self.c.events(
                decode=True, since=since, until=until, filters={"container": ctr.id}
            )
        ]
        actions = [e["Action"] for e in evs if e["Type"] == "container"]
        self.assertEqual(actions, ["create", "start", "die", "destroy"])
        die = [e for e in evs if e["Action"] == "die"][0]
        self.assertEqual(die["Actor"]["ID"], ctr.id)
        self.assertEqual(die["Actor"]["Attributes"]["exitCode"], "2")
        self.assertEqual(die["Actor"]["Attributes"]["ev"], "1")
        self.assertEqual(die["Actor"]["Attributes"]["image"], IMAGE)
        self.assertIn("timeNano", die)
        # A live stream (no until) sees a new container's events.
        stream = self.c.events(
            decode=True,
            until=time.time() + 15,
            filters={"type": "container", "event": "start"},
        )
        live = self.run_d(["true"])
        seen = False
        for e in stream:
            if e["Actor"]["ID"] == live.id:
                seen = True
                break
        stream.close()
        self.assertTrue(seen, "the live stream never showed the start")


class Refusals(Base):
    """What the SDK can call and berthd does not do: an error naming it, never a silent
    success."""

    def refused(self, status, words, f, *args, **kw):
        with self.assertRaises(APIError) as cm:
            f(*args, **kw)
        self.assertEqual(cm.exception.status_code, status, cm.exception.explanation)
        for w in words:
            self.assertIn(w, cm.exception.explanation)

    def test_endpoints_berthd_does_not_serve(self):
        # No builder, swarm, plugins or distribution endpoint: 404 naming the path.
        dockerfile = io.BytesIO(b"FROM busybox\nRUN true\n")
        self.refused(404, ["/build"], self.c.images.build, fileobj=dockerfile, tag="b:1")
        # As dockerd on a node outside a swarm: 503 "not a swarm manager", which the
        # SDK's Swarm model takes as no swarm.
        self.assertIsNone(self.c.swarm.id)
        self.refused(404, ["/services"], self.c.services.list)
        self.refused(404, ["/nodes"], self.c.nodes.list)
        self.refused(404, ["/secrets"], self.c.secrets.list)
        self.refused(404, ["/configs"], self.c.configs.list)
        self.refused(404, ["/plugins"], self.c.plugins.list)
        self.refused(404, ["/distribution"], self.c.images.get_registry_data, "busybox:latest")
        # Registry search is refused with a 400 naming it.
        self.refused(400, ["search"], self.c.images.search, "busybox")

    def test_fields_berthd_refuses(self):
        before = {x.id for x in self.c.containers.list(all=True)}
        self.refused(
            400,
            ["StorageOpt"],
            self.c.containers.run,
            IMAGE,
            ["true"],
            storage_opt={"size": "1G"},
            **NONE,
        )
        self.refused(
            400,
            ["publish", "none"],
            self.c.containers.create,
            IMAGE,
            ["true"],
            ports={"80/tcp": 8080},
            **NONE,
        )
        # Nothing was made by a refused create.
        self.assertEqual({x.id for x in self.c.containers.list(all=True)}, before)
        name = uniq("tmpfsvol")
        self.refused(
            400,
            ["type=\"tmpfs\""],
            self.c.volumes.create,
            name,
            driver_opts={"type": "tmpfs", "device": "tmpfs", "o": "size=1m"},
        )
        self.refused(404, ["nfs"], self.c.volumes.create, uniq("nfs"), driver="nfs")
        with self.assertRaises(NotFound):
            self.c.volumes.get(name)


if __name__ == "__main__":
    unittest.main()
