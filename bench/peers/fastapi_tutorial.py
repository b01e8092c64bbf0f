"""Peer 1: the broadcast pattern from FastAPI's WebSockets tutorial, as most users write it.

A list of sockets and an awaited `send_text` per reader; a POST endpoint broadcasts its
body. The benchmark serves it with uvicorn's default settings, as most users would, so
permessage-deflate is accepted whenever a browser offers it.
"""

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect


class ConnectionManager:
    def __init__(self) -> None:
        self.active_connections: list[WebSocket] = []

    async def connect(self, websocket: WebSocket) -> None:
        await websocket.accept()
        self.active_connections.append(websocket)

    def disconnect(self, websocket: WebSocket) -> None:
        self.active_connections.remove(websocket)

    async def broadcast(self, message: str) -> None:
        for connection in self.active_connections:
            await connection.send_text(message)


manager = ConnectionManager()
app = FastAPI()


@app.websocket("/ws")
async def websocket_endpoint(websocket: WebSocket) -> None:
    await manager.connect(websocket)
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        manager.disconnect(websocket)


@app.post("/publish")
async def publish(request: Request) -> dict[str, int]:
    message = (await request.body()).decode()
    await manager.broadcast(message)
    return {"readers": len(manager.active_connections)}
