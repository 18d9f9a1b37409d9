"""krea mcp driven by a client this project did not write: the Python MCP SDK (`mcp` on PyPI).

Usage: python mcp_python_client.py PATH/TO/krea
Starts `krea mcp --sim` over stdio, then `krea mcp --sim --http --output-schemas` over Streamable
HTTP (with its bearer token; the SDK then checks every result against its tool's output schema),
and runs the acceptance flow over each: list the tools, read a model's schema,
make an image (a file on disk, a preview under 1 MB, progress notifications), then a video that
outlasts a one-second wait (`pending`) and is finished by `wait_job`.
The video is decoded with FFmpeg (PyAV) when `av` is installed: the simulator's MP4 plays.
Exits non-zero, saying what went wrong, if anything does.
"""

import asyncio
import os
import sys
import tempfile

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

TOKEN = "python-sdk-token-0123456789"

EXPECTED_TOOLS = {
    "cancel_job", "enhance_image", "estimate_cost", "generate_image", "generate_video",
    "get_job", "get_model_schema", "list_jobs", "list_models", "pipeline_status",
    "resume_jobs", "run_model", "run_pipeline", "upload_asset", "wait_job",
}


def check(condition, what):
    if not condition:
        raise SystemExit(f"mcp python client: {what}")


def scratch_env(scratch):
    return {
        "HOME": scratch,
        "XDG_STATE_HOME": os.path.join(scratch, "state"),
        "XDG_CACHE_HOME": os.path.join(scratch, "cache"),
        "XDG_CONFIG_HOME": os.path.join(scratch, "config"),
        "PATH": os.environ.get("PATH", ""),
    }


async def over_stdio(krea):
    with tempfile.TemporaryDirectory(prefix="krea-mcp-py-") as scratch:
        out = os.path.join(scratch, "out")
        server = StdioServerParameters(
            command=krea,
            args=["mcp", "--sim", "--output-dir", out],
            env=scratch_env(scratch),
            cwd=scratch,
        )
        async with stdio_client(server) as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                return await flow(session, schemas=False)


async def over_http(krea):
    with tempfile.TemporaryDirectory(prefix="krea-mcp-py-http-") as scratch:
        out = os.path.join(scratch, "out")
        env = scratch_env(scratch) | {"KREA_MCP_TOKEN": TOKEN}
        server = await asyncio.create_subprocess_exec(
            krea, "mcp", "--sim", "--http", "127.0.0.1:0", "--output-schemas",
            "--output-dir", out,
            env=env, cwd=scratch, stdin=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        drain = None
        try:
            url = None
            while url is None:
                line = await asyncio.wait_for(server.stderr.readline(), 60)
                check(line, "krea mcp --http printed no URL")
                text = line.decode().strip()
                if text.startswith("krea mcp: serving "):
                    url = text.removeprefix("krea mcp: serving ")
            # Whatever else the server says must not fill the pipe and stall it.
            drain = asyncio.create_task(server.stderr.read())
            async with create_mcp_http_client(
                headers={"Authorization": f"Bearer {TOKEN}"}
            ) as http:
                async with streamable_http_client(url, http_client=http) as streams:
                    async with ClientSession(streams[0], streams[1]) as session:
                        decoded = await flow(session, schemas=True)
            async with create_mcp_http_client() as anonymous:
                refused = await anonymous.post(url, json={})
                check(refused.status_code == 401, f"no token: {refused.status_code}")
            return decoded
        finally:
            if server.returncode is None:
                server.terminate()
                code = await asyncio.wait_for(server.wait(), 30)
                check(code == 0, f"krea mcp --http exited {code} on SIGTERM")
            if drain:
                drain.cancel()


async def main(krea):
    decoded = await over_stdio(krea)
    await over_http(krea)
    print(
        f"mcp python client: {len(EXPECTED_TOOLS)} tools, image, pending video, wait_job, "
        + "over stdio and Streamable HTTP: ok; "
        + decoded
    )


async def flow(session, schemas):
    """The acceptance flow. With `schemas` the server publishes output schemas, and the SDK's
    session checks every structured result against its tool's (a mismatch raises)."""
    init = await session.initialize()
    check(init.server_info.name == "krea", f"server name {init.server_info.name!r}")

    listed = (await session.list_tools()).tools
    tools = {t.name for t in listed}
    check(tools == EXPECTED_TOOLS, f"tools {sorted(tools)}")
    with_schema = {t.name for t in listed if t.output_schema}
    check(with_schema == (EXPECTED_TOOLS if schemas else set()), f"output schemas {with_schema}")

    schema = await session.call_tool("get_model_schema", {"model": "flux"})
    check(not schema.is_error, f"get_model_schema: {schema.content}")
    check(schema.structured_content["id"] == "bfl/flux-1-dev", "flux resolves")

    progress = []

    async def on_progress(value, total, message):
        progress.append((value, total, message))

    image = await session.call_tool(
        "generate_image",
        {"prompt": "a red fox in the snow", "model": "flux"},
        progress_callback=on_progress,
    )
    check(not image.is_error, f"generate_image: {image.content}")
    s = image.structured_content
    check(s["status"] == "completed", f"image status {s['status']}")
    check(s.get("simulated") is True, "a --sim result says it is simulated")
    check(None not in s.values(), f"no null fields: {s}")
    check(os.path.isfile(s["files"][0]), f"file {s['files'][0]} exists")
    previews = [c for c in image.content if c.type == "image"]
    check(len(previews) == 1, "one preview")
    check(len(previews[0].data) < 1_000_000, "preview under 1 MB")
    links = [c for c in image.content if c.type == "resource_link"]
    check(links and str(links[0].uri).startswith("file:///"), "a file link")
    check(progress, "progress notifications arrive")

    video = await session.call_tool(
        "generate_video", {"prompt": "waves at dusk", "wait_seconds": 1}
    )
    check(not video.is_error, f"generate_video: {video.content}")
    v = video.structured_content
    check(v["status"] != "completed" and "wait_job" in v["next"], f"pending: {v}")
    done = await session.call_tool("wait_job", {"job_id": v["id"]})
    check(not done.is_error, f"wait_job: {done.content}")
    d = done.structured_content
    check(d["status"] == "completed" and os.path.isfile(d["files"][0]), f"done: {d}")
    return decode(d["files"][0])


def decode(path):
    """Every frame of the video through FFmpeg's H.264 decoder, if PyAV is installed."""
    try:
        import av
    except ImportError:
        return "video not decoded (no PyAV)"
    with av.open(path) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        check(stream.codec_context.name == "h264", f"codec {stream.codec_context.name}")
        check(frames >= 12, f"{frames} frames decoded")
        return f"video decoded by FFmpeg: {frames} frames, {stream.width}x{stream.height} h264"


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
