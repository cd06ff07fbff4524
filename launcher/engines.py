"""The shared engines of scale-out mode: PostgreSQL and Redis.

`make run-cluster` and the cluster tests use an existing server when one is
given (CLUSTER_POSTGRES_URL, CLUSTER_REDIS_URL), else start Debian's
PostgreSQL and Redis binaries on private loopback ports with their data
under var/cluster, if they are not running already. A server this module
started is stopped by `stop_engines` (a server it found running is left
alone).
"""
from __future__ import annotations

import glob
import hashlib
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional
from urllib.parse import quote, urlsplit

POSTGRES_PORT = 55432
REDIS_PORT = 56379
POSTGRES_USER = "parenting"
# One database per service that keeps state: each service owns its data.
DATABASES = ("rasa", "reminders")
ENGINE_SECRETS = ("POSTGRES_PASSWORD", "REDIS_PASSWORD")


class EngineError(RuntimeError):
    """An engine is missing or would not start; the message says what to do."""


def _port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def postgres_bin_dir() -> Optional[Path]:
    """Directory of PostgreSQL's server binaries (Debian keeps them off PATH)."""
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    return Path(found[-1]).parent if found else None


def redis_server_bin() -> Optional[str]:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)


def missing_engines() -> List[str]:
    """Debian packages needed to start the engines locally that are not installed
    (empty when external engines are configured)."""
    missing = []
    if not os.environ.get("CLUSTER_POSTGRES_URL") and postgres_bin_dir() is None:
        missing.append("postgresql")
    if not os.environ.get("CLUSTER_REDIS_URL") and redis_server_bin() is None:
        missing.append("redis-server")
    return missing


def missing_message(missing: List[str]) -> str:
    """What to install (or point at) when the engines cannot be started here."""
    return (f"scale-out mode needs {' and '.join(missing)} (Debian: apt-get install {' '.join(missing)}), "
            "or CLUSTER_POSTGRES_URL / CLUSTER_REDIS_URL pointing at running servers")


@dataclass(frozen=True)
class PostgresAddress:
    """Where the cluster's PostgreSQL is and how to log in."""

    host: str
    port: int
    user: str
    password: str

    def url(self, database: str) -> str:
        """SQLAlchemy URL of one database (psycopg2 driver)."""
        return (f"postgresql://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
                f"@{self.host}:{self.port}/{database}")

    @classmethod
    def from_url(cls, url: str) -> "PostgresAddress":
        parts = urlsplit(url)
        return cls(parts.hostname or "127.0.0.1", parts.port or 5432, parts.username or "postgres",
                   parts.password or "")


@dataclass(frozen=True)
class RedisAddress:
    host: str
    port: int
    password: str

    @classmethod
    def from_url(cls, url: str) -> "RedisAddress":
        parts = urlsplit(url)
        return cls(parts.hostname or "127.0.0.1", parts.port or 6379, parts.password or "")


def _as_postgres(argv: List[str]) -> List[str]:
    """PostgreSQL refuses to run as root: drop to the postgres user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


def postgres_data_dir(var_dir: Path) -> Path:
    """Data directory of the local server. As root the server runs as the
    postgres user, which may not reach the checkout: keep it in postgres's home."""
    if os.geteuid() == 0:
        tag = hashlib.sha256(str(var_dir.resolve()).encode()).hexdigest()[:12]
        return Path("/var/lib/postgresql/parenting-assistant") / tag
    return var_dir / "cluster" / "postgres"


class LocalPostgres:
    """A private PostgreSQL server on a loopback port (password login only)."""

    def __init__(self, var_dir: Path, password: str, port: int = POSTGRES_PORT) -> None:
        self.data_dir = postgres_data_dir(var_dir)
        self.port = port
        self.password = password
        self.address = PostgresAddress("127.0.0.1", port, POSTGRES_USER, password)

    def _bin(self, name: str) -> str:
        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            raise EngineError("PostgreSQL is not installed: apt-get install postgresql")
        return str(bin_dir / name)

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            shutil.chown(path, "postgres", "postgres")

    def init(self) -> None:
        """Create the data directory once (initdb with a password-protected superuser)."""
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._chown(self.data_dir.parent)
        self._chown(self.data_dir)
        pwfile = self.data_dir.parent / f".pw-{os.getpid()}"
        pwfile.write_text(self.password + "\n", encoding="utf-8")
        pwfile.chmod(0o600)
        self._chown(pwfile)
        try:
            subprocess.run(_as_postgres([
                self._bin("initdb"), "-D", str(self.data_dir), "-U", POSTGRES_USER, f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
            ]), check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        except subprocess.CalledProcessError as error:
            raise EngineError(f"initdb failed:\n{error.stdout}") from None
        finally:
            pwfile.unlink(missing_ok=True)

    def running(self) -> bool:
        return _port_open("127.0.0.1", self.port)

    def start(self) -> None:
        """Start the server (fsync stays on: nothing a user gave us may be lost)."""
        self.init()
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
                   "-c max_connections=300")
        result = subprocess.run(_as_postgres([
            self._bin("pg_ctl"), "-D", str(self.data_dir), "-l", str(self.data_dir / "server.log"),
            "-w", "-t", "60", "-o", options, "start",
        ]), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if result.returncode != 0:
            raise EngineError(f"PostgreSQL did not start ({self.data_dir / 'server.log'}):\n{result.stdout}")

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(_as_postgres([self._bin("pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop"]),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def restart(self) -> None:
        """Stop and start again (used by the fault tests)."""
        self.stop()
        self.start()


class LocalRedis:
    """A private Redis server on a loopback port; the lock store needs no persistence."""

    def __init__(self, var_dir: Path, password: str, port: int = REDIS_PORT) -> None:
        self.dir = var_dir / "cluster" / "redis"
        self.port = port
        self.password = password
        self.address = RedisAddress("127.0.0.1", port, password)

    def running(self) -> bool:
        return _port_open("127.0.0.1", self.port)

    def start(self) -> None:
        binary = redis_server_bin()
        if binary is None:
            raise EngineError("Redis is not installed: apt-get install redis-server")
        self.dir.mkdir(parents=True, exist_ok=True)
        subprocess.run([
            binary, "--bind", "127.0.0.1", "--port", str(self.port), "--requirepass", self.password,
            "--save", "", "--appendonly", "no", "--dir", str(self.dir), "--daemonize", "yes",
            "--pidfile", str(self.dir / "redis.pid"), "--logfile", str(self.dir / "redis.log"),
        ], check=True)
        deadline = time.monotonic() + 20
        while not self.running():
            if time.monotonic() > deadline:
                raise EngineError(f"Redis did not start; see {self.dir / 'redis.log'}")
            time.sleep(0.1)

    def stop(self) -> None:
        import redis  # installed with rasa (its Redis lock store)

        try:
            redis.Redis(host="127.0.0.1", port=self.port, password=self.password).shutdown(nosave=True)
        except redis.exceptions.ConnectionError:
            pass  # shutting down closes the connection


@dataclass
class Engines:
    """Addresses of the engines, and which of them this process started."""

    postgres: PostgresAddress
    redis: RedisAddress
    started: List[object]
    rasa_db: str = "rasa"
    reminders_db: str = "reminders"

    def environment(self) -> Dict[str, str]:
        """Variables read by bot/endpoints.cluster.yml and the reminders service."""
        pg, rd = self.postgres, self.redis
        return {
            "POSTGRES_HOST": pg.host,
            "POSTGRES_PORT": str(pg.port),
            "POSTGRES_USER": pg.user,
            "POSTGRES_PASSWORD": pg.password,
            "RASA_TRACKER_DB_NAME": self.rasa_db,
            "REDIS_HOST": rd.host,
            "REDIS_PORT": str(rd.port),
            "REDIS_PASSWORD": rd.password,
            "DATABASE_URL": pg.url(self.reminders_db),
        }


def create_databases(address: PostgresAddress, names=DATABASES) -> None:
    """Create each service's database if it does not exist yet."""
    import psycopg2  # installed with rasa (its SQL tracker store)

    deadline = time.monotonic() + 30
    while True:
        try:
            conn = psycopg2.connect(host=address.host, port=address.port, user=address.user,
                                    password=address.password, dbname="postgres", connect_timeout=5)
            break
        except psycopg2.OperationalError as error:
            if time.monotonic() > deadline:
                raise EngineError(f"cannot log in to PostgreSQL at {address.host}:{address.port}: {error}") from None
            time.sleep(0.5)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            for name in names:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()


def ensure_engines(var_dir: Path, secrets: Mapping[str, str], env: Optional[Mapping[str, str]] = None,
                   postgres_port: int = POSTGRES_PORT, redis_port: int = REDIS_PORT) -> Engines:
    """Use the configured engines, or start local ones that are not running; create the databases."""
    env = os.environ if env is None else env
    started: List[object] = []

    def configured_or_local(variable: str, parse, local):
        if env.get(variable):
            return parse(env[variable])
        if not local.running():
            local.start()
            started.append(local)
        return local.address

    pg = configured_or_local("CLUSTER_POSTGRES_URL", PostgresAddress.from_url,
                             LocalPostgres(var_dir, secrets.get("POSTGRES_PASSWORD", ""), postgres_port))
    rd = configured_or_local("CLUSTER_REDIS_URL", RedisAddress.from_url,
                             LocalRedis(var_dir, secrets.get("REDIS_PASSWORD", ""), redis_port))
    create_databases(pg)
    return Engines(pg, rd, started)


def stop_engines(engines: Engines) -> None:
    """Stop the engines this process started (newest first)."""
    for engine in reversed(engines.started):
        engine.stop()
